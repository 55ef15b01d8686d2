import * as fs from 'fs';
import { CertError, PreflightError, localIoError } from '../../errors';
import { factKey } from '../facts';
import type { Action, Step } from '../../engine/step';
import { CertificateAuthority, CertStore, KeyType, RsaKeyPool, SanBuilder, createCA, importCA, issueLeaf, keyTypeOf, parseBundle, parseCertificate, verifyChain } from '../../pki';
import type { Instance, Topology } from '../../topology/types';
import { CERT_ROLES } from './stage';
import type { TlsContext } from '../context';
import { allowedCallers } from '../../components/callers';

const DAY = 86_400_000;
/** Certificates closer to expiry than this are reissued instead of reused. */
export const RENEW_BEFORE_DAYS = 30;
/** tiseal's own client certificate CN (allowed by every component under --verify-cn). */
export const TISEAL_CLIENT_CN = 'tiseal';

/** `--extra-san` values: `san` for every leaf, `host=san1,san2` for the instances on one host. */
export function parseExtraSans(values: string[] | undefined): { all: string[]; byHost: Map<string, string[]> } {
  const all: string[] = [];
  const byHost = new Map<string, string[]>();
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    if (eq > 0) byHost.set(v.slice(0, eq), [...(byHost.get(v.slice(0, eq)) ?? []), ...v.slice(eq + 1).split(',').filter(Boolean)]);
    else all.push(...v.split(',').filter(Boolean));
  }
  return { all, byHost };
}

/** Every address an instance is dialled at: the host, TiUP's manage_host and advertise addresses. */
export function instanceSans(inst: Instance, extra: ReturnType<typeof parseExtraSans>): string[] {
  const hostOf = (addr: string) => addr.replace(/^https?:\/\//, '').replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return [inst.host, ...(inst.manageHost ? [inst.manageHost] : []), ...Object.values(inst.advertise).map(hostOf), ...extra.all, ...(extra.byHost.get(inst.host) ?? [])];
}

/**
 * The names a reissued leaf must keep: the topology's (instanceSans) and every DNS/IP SAN of the
 * leaf it replaces. An operator's `--extra-san` (a load balancer's name) is in no file but the
 * certificate itself, so `tls rotate`, `rotate --ca` or a re-run without the flag must not drop it.
 */
export function leafSans(inst: Instance, extra: ReturnType<typeof parseExtraSans>, current: string | undefined): string[] {
  const names = instanceSans(inst, extra);
  try {
    if (current) {
      const c = parseBundle(current)[0];
      if (c) names.push(...c.sans.dns, ...c.sans.ip);
    }
  } catch {
    // an unreadable current certificate keeps nothing
  }
  const seen = new Set<string>();
  return names.filter((n) => {
    const k = n.toLowerCase();
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** The key type of a certificate's public key, undefined when unreadable or neither RSA nor EC. */
export function certKeyType(certPem: string | undefined): KeyType | undefined {
  try {
    return certPem ? keyTypeOf(parseBundle(certPem)[0]!.x509.publicKey) : undefined;
  } catch {
    return undefined;
  }
}

/** Key type of a leaf that replaces `currentPem`: --key-type when given, else the current leaf's (a re-run keeps it), else RSA. */
export const leafKeyType = (flag: KeyType | undefined, currentPem?: string): KeyType => flag ?? certKeyType(currentPem) ?? 'rsa';

/**
 * Is a certificate still good to use: issued by this CA, valid for long enough, covering these
 * names, and (when --key-type was given) of that key type, so a re-run with another type reissues.
 */
export function certStillGood(certPem: string, ca: CertificateAuthority, names: string[], now = new Date(), keyType?: KeyType): boolean {
  try {
    if (!verifyChain(certPem, ca.bundlePem).ok) return false;
    if (keyType && certKeyType(certPem) !== keyType) return false;
    const info = parseCertificate(certPem);
    if (info.notAfter.getTime() - now.getTime() < RENEW_BEFORE_DAYS * DAY) return false;
    const have = new Set([...info.sans.dns.map((d) => d.toLowerCase()), ...info.sans.ip]);
    return names.every((n) => have.has(n.toLowerCase()) || have.has(n));
  } catch {
    return false;
  }
}

/**
 * RSA keys for every leaf a run may issue (each instance with a certificate, and tiseal's client),
 * generated on worker threads from now on, so that they overlap preflight. None for --key-type ecdsa
 * (P-256 keys take microseconds). The caller closes the pool when the command ends.
 */
export function startKeyPool(topology: Topology, keyType: KeyType | undefined): RsaKeyPool | undefined {
  if (keyType === 'ecdsa') return undefined;
  return new RsaKeyPool(topology.instances.filter((i) => CERT_ROLES.has(i.role)).length + 1);
}

/**
 * `tls enable --key-type T` on a cluster already on TLS whose instances serve another key type:
 * only the certificates would change, which `tls rotate` does in place. The enable flow would
 * restart every tier for it, so it stops here instead, naming the first such instance.
 */
export function keyTypeChangeOnly(ctx: TlsContext, topologyFile: string): PreflightError | undefined {
  const want = ctx.flags.keyType;
  if (!want || ctx.want !== 'on') return undefined;
  for (const inst of ctx.topology.instances) {
    const served = ctx.facts?.instances.get(factKey(inst))?.live?.peer?.keyType;
    if (served && served !== want) {
      return new PreflightError(`${inst.host} ${inst.unit}: TLS is already on, with ${served} certificates; --key-type ${want} would change only the certificates`, {
        suggestion: `run \`tiseal tls rotate ${topologyFile} --key-type ${want}\`: it reissues every certificate in place, restarting only what does not reload; nothing was changed`,
      });
    }
  }
  return undefined;
}

/** The CA the run will use when it exists already: brought with --ca-cert/--ca-key, or in the store. Validated. */
function existingCA(ctx: TlsContext, store: CertStore): { ca: CertificateAuthority; save?: Action } | undefined {
  const { flags } = ctx;
  if (flags.caCert || flags.caKey) {
    if (!flags.caCert || !flags.caKey) throw new CertError('--ca-cert and --ca-key go together', { suggestion: 'pass both files (and --ca-chain for an intermediate CA)' });
    const read = (flag: string, f: string) => {
      try {
        return fs.readFileSync(f, 'utf8');
      } catch (e) {
        throw localIoError(e, f, `read ${flag}`, `check the path given to ${flag}`);
      }
    };
    const certPem = read('--ca-cert', flags.caCert);
    const keyPem = read('--ca-key', flags.caKey);
    const chainPem = flags.caChain ? read('--ca-chain', flags.caChain) : undefined;
    let ca: CertificateAuthority;
    try {
      ca = importCA({ certPem, keyPem, chainPem });
    } catch (e) {
      if (!(e instanceof CertError)) throw e;
      throw new CertError(`--ca-cert ${flags.caCert}: ${e.message}`, { suggestion: e.suggestion, cause: e });
    }
    if (!ca.outlives(flags.certDays)) throw new CertError(`${flags.caCert}: the CA expires ${ca.expiresAt.toISOString()}, before ${flags.certDays}-day certificates would`, { suggestion: 'use a longer-lived CA or a smaller --cert-days' });
    if (store.hasCA()) {
      const existing = store.loadCA({ allowExpired: true });
      if (existing.info.fingerprintSha256 !== ca.info.fingerprintSha256) {
        throw new CertError(`${store.dir} already holds a different CA (${existing.info.subjectCN})`, { suggestion: 'use `tiseal tls rotate --ca` to move the cluster to another CA' });
      }
      return { ca };
    }
    return { ca, save: { title: `import the CA from ${flags.caCert} into ${store.dir} (key 0600)`, run: () => store.saveCA(ca) } };
  }
  if (!store.hasCA()) return undefined;
  const ca = store.loadCA();
  if (!ca.outlives(flags.certDays)) {
    throw new CertError(`the cluster CA in ${store.dir} expires ${ca.expiresAt.toISOString()}, before ${flags.certDays}-day certificates would`, { suggestion: 'pass a smaller --cert-days, or move to a new CA with `tiseal tls rotate --ca`' });
  }
  return { ca };
}

async function resolveCA(ctx: TlsContext, store: CertStore): Promise<{ ca: CertificateAuthority; save?: Action }> {
  const found = existingCA(ctx, store);
  if (found) return found;
  const ca = await createCA({ cluster: ctx.cluster.name, days: ctx.flags.caDays, keyType: ctx.flags.keyType });
  return { ca, save: { title: `create the cluster CA (CN "${ca.info.subjectCN}", ${ctx.flags.caDays} days) in ${store.dir}; its key stays on this machine`, run: () => store.saveCA(ca) } };
}

/**
 * What the certificates step will need, checked before the first change (PD is scaled in before
 * certificates are made): the CA to use, and a certificate name for every address of every instance.
 */
export function checkCertificateInputs(ctx: TlsContext): void {
  if (ctx.want !== 'on') return;
  existingCA(ctx, new CertStore(ctx.opts.stateDir, ctx.cluster.name));
  const extra = parseExtraSans(ctx.flags.extraSan);
  for (const inst of ctx.topology.instances) {
    const at = `${inst.host} ${inst.unit}`;
    const cn = inst.certName;
    if (!cn || cn.length > 64) throw new PreflightError(`${at}: '${cn}' cannot be a certificate common name (1 to 64 characters)`, { suggestion: 'nothing was changed; fix the topology' });
    for (const name of instanceSans(inst, extra)) {
      try {
        new SanBuilder().addHost(name);
      } catch (e) {
        throw new PreflightError(`${at}: '${name}' cannot be a name in a certificate: ${(e as Error).message}`, {
          suggestion: 'use IP addresses or DNS names (labels of at most 63 letters, digits, - and _) for host, manage_host and advertise addresses; nothing was changed',
        });
      }
    }
  }
}

/** Local certificate material: the CA (create, import or reuse) and tiseal's client certificate. */
export const certificatesStep: Step<TlsContext> = {
  id: 'certificates',
  title: 'Certificates: CA and tiseal client certificate (local)',
  async decide(ctx) {
    const store = new CertStore(ctx.opts.stateDir, ctx.cluster.name);
    if (ctx.want === 'off') {
      return { actions: [], reason: store.hasCA() ? 'keeping the CA and certificates' : 'no CA' };
    }
    const { ca, save } = await resolveCA(ctx, store);
    const actions: Action[] = save ? [save] : [];
    let client = store.loadClient();
    if (!client || !certStillGood(client.certPem, ca, [], new Date(), ctx.flags.keyType)) {
      const keyType = leafKeyType(ctx.flags.keyType, client?.certPem);
      const issued = await issueLeaf(ca, { commonName: TISEAL_CLIENT_CN, usage: 'client', days: ctx.flags.certDays, keyType, keyPool: ctx.keyPool });
      client = { certPem: issued.certPem, keyPem: issued.keyPem };
      const pair = client;
      actions.push({ title: `issue tiseal's client certificate (CN ${TISEAL_CLIENT_CN}) into ${store.dir}`, run: () => store.saveClient(pair) });
    }
    const extra = parseExtraSans(ctx.flags.extraSan);
    ctx.caBundlePem = ca.bundlePem;
    ctx.clientTls = { ca: ca.bundlePem, cert: client.certPem, key: client.keyPem };
    ctx.pd.setTls(ctx.clientTls);
    ctx.issueLeaf = async (inst, current) => {
      const keyType = leafKeyType(ctx.flags.keyType, current);
      const issued = await issueLeaf(ca, { commonName: inst.certName, hosts: leafSans(inst, extra, current), days: ctx.flags.certDays, keyType, keyPool: ctx.keyPool });
      // The host's certificate file carries the intermediates too: clients that trust only the root still verify it.
      return { certPem: issued.fullChainPem, keyPem: issued.keyPem };
    };
    ctx.leafStillGood = (inst, pem) => certStillGood(pem, ca, instanceSans(inst, extra), new Date(), ctx.flags.keyType) && pem.includes(ca.servedChainPem);
    if (ctx.flags.verifyCn) {
      const version = ctx.facts?.pdVersion ?? ctx.topology.componentVersions.pd ?? ctx.topology.clusterVersion;
      ctx.allowedCn = (inst) => allowedCallers(inst.role, version)?.cns;
      const pdNote = allowedCallers('pd', version)?.note;
      if (pdNote && !ctx.notes.includes(pdNote)) ctx.notes.push(pdNote);
    }
    return actions.length ? { actions } : { actions: [], reason: `reusing the CA and client certificate in ${store.dir}` };
  },
};
