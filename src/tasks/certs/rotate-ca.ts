import * as fs from 'fs';
import * as path from 'path';
import { COMPONENTS, restartTiers, tlsPaths } from '../../components';
import { probeTls } from '../../net/probe';
import { request } from '../../util/http';
import type { Action, Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { CertError, StepError } from '../../errors';
import { CertificateAuthority, CertStore, createCA, issueLeaf, keyTypeOf, parseBundle, parseCertificate, verifyChain } from '../../pki';
import type { ExecutorPool } from '../../ssh/executor';
import type { Instance, Topology } from '../../topology/types';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { shq } from '../../util/shell';
import { TISEAL_CLIENT_CN, certKeyType, leafKeyType, leafSans, parseExtraSans } from './issue';
import { executorFor, TlsContext } from '../context';
import { waitHealthy } from '../restart/health';
import { readRemoteText, systemctl, unitStates } from '../remote';
import { readHostCa } from './host-ca';
import { RotateState } from './rotate';
import { restartStoreEvictingLeaders } from '../restart/evict-leaders';
import { EVICT_LEADER } from '../../pd/schedulers';
import { CERT_ROLES, fileAction } from './stage';

/**
 * Moving a cluster to a new CA without an outage. Components load their CA once at start, so the
 * order is: trust both CAs (rolling restart), reissue every leaf from the new CA (reloaded without
 * restarts), trust only the new CA (rolling restart), then make the new CA the cluster's CA here.
 * Every step decides from what the hosts hold, so re-running `tls rotate --ca` resumes.
 */
export interface CaRotation {
  current: CertStore;
  next: CertStore;
  oldCa?: CertificateAuthority;
  newCa?: CertificateAuthority;
}

const certInstances = (ctx: TlsContext) => ctx.topology.instances.filter((i) => CERT_ROLES.has(i.role));
const both = (r: CaRotation) => r.oldCa!.bundlePem + r.newCa!.bundlePem;
const FROM_HOSTS = 'decided from the hosts';

/** Fingerprints of the certificates in a PEM bundle (empty for anything else). */
function fingerprints(pem: string | undefined): Set<string> {
  try {
    return new Set(pem ? parseBundle(pem).map((c) => c.fingerprintSha256) : []);
  } catch {
    return new Set();
  }
}
const sameSet = (a: Set<string>, b: Set<string>) => a.size === b.size && [...a].every((x) => b.has(x));

/** What one instance's host holds during a CA move: the CAs its ca.crt trusts, the CA its leaf is from. */
export interface HostMoveState {
  inst: Instance;
  trusts: 'old' | 'both' | 'new' | 'other';
  leaf: 'old' | 'new' | 'other';
}

/**
 * The phase of a CA move, read from the hosts alone (bundles by fingerprint, leaves by chain), in
 * the order the move goes: nothing yet, trusting both (some or all), reissued (some or all leaves
 * from the new CA), trusting only the new CA (some or all). `other` is a host that fits no phase.
 */
export type MovePhase = 'not-started' | 'trusting-both' | 'reissuing' | 'trusting-new' | 'moved' | 'other';

export function classifyHost(inst: Instance, caPem: string | undefined, certPem: string | undefined, r: Pick<CaRotation, 'oldCa' | 'newCa'>): HostMoveState {
  const have = fingerprints(caPem);
  const oldFp = fingerprints(r.oldCa!.bundlePem);
  const newFp = fingerprints(r.newCa!.bundlePem);
  const trusts = sameSet(have, oldFp) ? 'old' : sameSet(have, newFp) ? 'new' : sameSet(have, new Set([...oldFp, ...newFp])) ? 'both' : 'other';
  const from = (ca: CertificateAuthority) => {
    try {
      return Boolean(certPem) && verifyChain(certPem!, ca.bundlePem).ok;
    } catch {
      return false;
    }
  };
  return { inst, trusts, leaf: from(r.newCa!) ? 'new' : from(r.oldCa!) ? 'old' : 'other' };
}

export function movePhase(hosts: HostMoveState[]): { phase: MovePhase; evidence: string } {
  const n = (f: (h: HostMoveState) => boolean) => hosts.filter(f).length;
  const of = `of ${hosts.length} instances`;
  const odd = hosts.filter((h) => h.trusts === 'other' || h.leaf === 'other' || (h.trusts === 'new' && h.leaf !== 'new') || (h.trusts === 'old' && h.leaf === 'new'));
  if (odd.length) {
    const h = odd[0];
    return { phase: 'other', evidence: `${h.inst.id} on ${h.inst.host} trusts ${h.trusts === 'other' ? 'neither the current nor the new CA alone or together' : `the ${h.trusts} CA${h.trusts === 'both' ? 's' : ''}`} and serves a leaf from ${h.leaf === 'other' ? 'neither CA' : `the ${h.leaf} CA`}` };
  }
  const trustNew = n((h) => h.trusts === 'new');
  const leafNew = n((h) => h.leaf === 'new');
  const trustBoth = n((h) => h.trusts === 'both');
  if (trustNew === hosts.length) return { phase: 'moved', evidence: `all ${hosts.length} instances trust only the new CA` };
  if (trustNew > 0) return { phase: 'trusting-new', evidence: `${trustNew} ${of} trust only the new CA` };
  if (leafNew > 0) return { phase: 'reissuing', evidence: `${leafNew} ${of} hold a leaf from the new CA, ${trustBoth} trust both CAs` };
  if (trustBoth > 0) return { phase: 'trusting-both', evidence: `${trustBoth} ${of} trust both CAs` };
  return { phase: 'not-started', evidence: `all ${hosts.length} instances trust only the current CA` };
}

export async function readMoveState(ctx: TlsContext, r: CaRotation): Promise<HostMoveState[]> {
  return mapLimit(certInstances(ctx), readConcurrency(ctx.opts), async (inst) => {
    const exec = await executorFor(ctx, inst);
    const p = tlsPaths(inst);
    return classifyHost(inst, await readRemoteText(exec, p.ca), await readRemoteText(exec, p.cert), r);
  });
}

/**
 * Before anything else, locally: a run killed inside the promote step (tls/ moved aside, tls-next
 * not yet in its place) or while saving the new CA (its key written, not its certificate). The
 * hosts decide: tls-next becomes tls/ only when they trust nothing but that CA; a half-saved
 * tls-next is set aside only when no host trusts anything but the current CA.
 */
export async function recoverLocalCaMove(ctx: { pool: ExecutorPool; topology: Topology }, stateDir: string, cluster: string, dryRun: boolean): Promise<string | undefined> {
  const current = new CertStore(stateDir, cluster);
  const next = new CertStore(stateDir, cluster, 'tls-next');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
  const nextCert = fs.existsSync(next.caCertPath);
  if (next.hasCA() && !nextCert && current.hasCA()) {
    const hostCa = await readHostCa(ctx).catch(() => undefined);
    const cur = fingerprints(current.loadCA({ allowExpired: true }).bundlePem);
    if (!hostCa || !hostCa.cas.every((c) => cur.has(c.fingerprint))) return undefined; // left to the checks that name the CA
    const aside = path.join(path.dirname(next.dir), `tls-next-incomplete-${stamp}`);
    if (dryRun) throw new CertError(`${next.dir} holds a CA key without its certificate (a run killed while saving it)`, { suggestion: 'run the same command without --dry-run: it sets that directory aside and starts the move again' });
    fs.renameSync(next.dir, aside);
    return `${next.dir} held a CA key without its certificate and no host trusts it: set aside as ${aside}, the move starts again (${FROM_HOSTS})`;
  }
  if (current.hasCA() || !nextCert) return undefined;
  const hostCa = await readHostCa(ctx).catch(() => undefined);
  const want = fingerprints(next.loadCA({ allowExpired: true }).bundlePem);
  if (!hostCa || !sameSet(new Set(hostCa.cas.map((c) => c.fingerprint)), want)) return undefined;
  if (dryRun) throw new CertError(`${current.dir} is missing and the hosts trust only the CA in ${next.dir}: a \`tls rotate --ca\` was killed while making it the cluster CA`, { suggestion: 'run the same command without --dry-run to finish that (the old CA is already kept aside as tls-retired-*)' });
  fs.renameSync(next.dir, current.dir);
  return `a killed \`tls rotate --ca\` had moved ${current.dir} aside; the hosts trust only the CA in ${next.dir}, so it is now the cluster CA (${FROM_HOSTS})`;
}

export function nextCaStep(r: CaRotation): Step<TlsContext> {
  return {
    id: 'next-ca',
    title: 'The new CA (kept on this machine, next to the current one)',
    async decide(ctx) {
      r.oldCa = r.current.loadCA({ allowExpired: true });
      let save: Action | undefined;
      if (r.next.hasCA()) {
        r.newCa = r.next.loadCA();
      } else {
        // Named by the second it was made (UTC): every CA of a cluster keeps a name of its own, also
        // when it is moved more than once a day; "(2)" only if the current one has that very name.
        const cn = `tiseal CA ${ctx.cluster.name} ${new Date().toISOString().slice(0, 19).replace('T', ' ')}`;
        // Without --key-type the new CA keeps the old one's key type, as the leaves keep theirs.
        const keyType = ctx.flags.keyType ?? keyTypeOf(r.oldCa.cert.x509.publicKey);
        r.newCa = await createCA({ commonName: cn === r.oldCa.info.subjectCN ? `${cn} (2)` : cn, days: ctx.flags.caDays, keyType });
        const ca = r.newCa;
        save = { title: `create the new CA "${ca.info.subjectCN}" in ${r.next.dir} (its key stays on this machine)`, run: () => r.next.saveCA(ca) };
      }
      const extra = parseExtraSans(ctx.flags.extraSan);
      const newCa = r.newCa;
      ctx.issueLeaf = async (inst, current) => {
        const l = await issueLeaf(newCa, { commonName: inst.certName, hosts: leafSans(inst, extra, current), days: ctx.flags.certDays, keyType: leafKeyType(ctx.flags.keyType, current), keyPool: ctx.keyPool });
        return { certPem: l.fullChainPem, keyPem: l.keyPem };
      };
      // During the move tiseal must accept servers on either CA.
      ctx.clientTls = { ...ctx.clientTls!, ca: both(r) };
      ctx.pd.setTls(ctx.clientTls);
      if (save) return { actions: [save] };
      const { phase, evidence } = movePhase(await readMoveState(ctx, r));
      if (phase === 'other') throw new StepError(`the CA move to "${r.newCa.info.subjectCN}" (${r.next.dir}) fits no phase on the hosts: ${evidence}`, { suggestion: 'bring that host\'s tls/ back in line with the others, or run `tiseal tls enable` (it converges certificates and trust)' });
      const note = `continuing the move to "${r.newCa.info.subjectCN}" from ${r.next.dir}: phase ${phase}, ${evidence} (${FROM_HOSTS})`;
      ctx.notes.push(note);
      return noop(note);
    },
  };
}

/**
 * Push `ca.crt` = `bundle(r)` to every instance whose host is not at that phase or past it (by
 * fingerprint: what a host trusts is what counts, not the bytes). `guard` refuses, from the hosts,
 * a push that would break trust.
 */
function pushBundleStep(id: string, title: string, bundle: (r: CaRotation) => string, atOrPast: Array<HostMoveState['trusts']>, r: CaRotation, guard?: (hosts: HostMoveState[]) => void): Step<TlsContext> {
  return {
    id,
    title,
    async decide(ctx) {
      const want = bundle(r);
      const hosts = await readMoveState(ctx, r);
      guard?.(hosts);
      const planned = await mapLimit(hosts, readConcurrency(ctx.opts), async (h) => {
        if (atOrPast.includes(h.trusts)) return undefined;
        const p = tlsPaths(h.inst);
        return fileAction(ctx, h.inst, p.ca, await readRemoteText(await executorFor(ctx, h.inst), p.ca), want, 0o644);
      });
      const actions = planned.filter((a): a is Action => a !== undefined);
      return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('every host already holds it');
    },
  };
}

const isStore = (i: Instance) => i.role === 'tikv' || i.role === 'tiflash';

/** Restart, one instance at a time in tier order, whatever started before its ca.crt changed; stores as TiUP does (evict-leaders.ts). */
function rollingRestartStep(id: string, title: string): Step<TlsContext> {
  return {
    id,
    title,
    async decide(ctx) {
      const ordered = restartTiers(certInstances(ctx)).flatMap((t) => t.instances);
      const stale = await mapLimit(ordered, readConcurrency(ctx.opts), async (inst): Promise<Instance | undefined> => {
        const exec = await executorFor(ctx, inst);
        const unit = (await unitStates(exec, [inst.unit])).get(inst.unit);
        const mtime = Number((await exec.exec(`stat -c %Y ${shq(tlsPaths(inst).ca)}`, { sudo: true })).stdout.trim()) * 1e6;
        return !unit || unit.activeState !== 'active' || unit.activeEnterUs < mtime ? inst : undefined;
      });
      const todo = stale.filter((i): i is Instance => i !== undefined);
      if (todo.length === 0) return noop('every instance started after its CA bundle changed');
      return {
        concurrency: 1,
        actions: todo.map((inst) => ({
          title: `${isStore(inst) ? 'evict its leaders, ' : ''}restart ${inst.unit} on ${inst.host} and wait until it is healthy (the CA is read at start)${isStore(inst) ? `, remove the ${EVICT_LEADER}` : ''}`,
          run: () =>
            restartStoreEvictingLeaders(ctx, inst, async () => {
              await systemctl(await executorFor(ctx, inst), 'restart', inst.unit);
              await waitHealthy(ctx, [inst], { tls: true });
            }),
        })),
      };
    },
  };
}

export function trustBothSteps(r: CaRotation): Step<TlsContext>[] {
  return [
    pushBundleStep('trust-both', 'Trust both CAs: ca.crt = current + new CA on every host', both, ['both', 'new'], r),
    rollingRestartStep('restart-trust-both', 'Rolling restart so every component trusts both CAs'),
  ];
}

/** Reissue leaves (and tiseal's client certificate) from the new CA where the host's leaf is still from the old one. */
export function reissueFromNewCaStep(r: CaRotation, state: RotateState): Step<TlsContext> {
  return {
    id: 'reissue-new-ca',
    title: 'Reissue every certificate from the new CA (picked up without restarts)',
    async decide(ctx) {
      const actions: Action[] = [];
      const client = r.next.loadClient();
      if (!client || !verifyChain(client.certPem, r.newCa!.bundlePem).ok || !keyTypeOk(ctx, client.certPem)) {
        const old = r.current.loadClient();
        const issued = await issueLeaf(r.newCa!, { commonName: TISEAL_CLIENT_CN, usage: 'client', days: ctx.flags.certDays, keyType: leafKeyType(ctx.flags.keyType, client?.certPem ?? old?.certPem), keyPool: ctx.keyPool });
        actions.push({ title: `issue tiseal's client certificate from the new CA into ${r.next.dir}`, run: () => r.next.saveClient({ certPem: issued.certPem, keyPem: issued.keyPem }) });
        ctx.clientTls = { ca: both(r), cert: issued.certPem, key: issued.keyPem };
      } else {
        ctx.clientTls = { ca: both(r), cert: client.certPem, key: client.keyPem };
      }
      ctx.pd.setTls(ctx.clientTls);
      const planned = await mapLimit(certInstances(ctx), readConcurrency(ctx.opts), async (inst): Promise<Action | undefined> => {
        const exec = await executorFor(ctx, inst);
        const p = tlsPaths(inst);
        const cert = await readRemoteText(exec, p.cert);
        if (cert && verifyChain(cert, r.newCa!.bundlePem).ok && keyTypeOk(ctx, cert)) {
          // Written by a killed run, maybe never served: verify-served checks it like one pushed now.
          state.pushed.set(`${inst.id}@${inst.host}`, parseCertificate(cert).serialHex.toLowerCase().replace(/^0+/, ''));
          return undefined;
        }
        const key = await readRemoteText(exec, p.key);
        const leaf = await ctx.issueLeaf!(inst, cert);
        state.pushed.set(`${inst.id}@${inst.host}`, parseCertificate(leaf.certPem).serialHex.toLowerCase().replace(/^0+/, ''));
        const writes = [fileAction(ctx, inst, p.key, key, leaf.keyPem, 0o600), fileAction(ctx, inst, p.cert, cert, leaf.certPem, 0o644)];
        return { title: `${inst.id} on ${inst.host}: key and certificate from the new CA`, diff: writes.map((w) => w.diff ?? '').join(''), run: async () => { for (const w of writes) await w.run(); } };
      });
      actions.push(...planned.filter((a): a is Action => a !== undefined));
      return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('every certificate is already from the new CA');
    },
  };
}

/**
 * After the last restart: every TLS port serves a leaf that verifies against the new CA alone,
 * and PD (which requires a client certificate) refuses one from the old CA.
 */
async function servesNewCaOnly(ctx: TlsContext, r: CaRotation): Promise<void> {
  const tls = { ca: r.newCa!.bundlePem, cert: ctx.clientTls?.cert, key: ctx.clientTls?.key };
  for (const inst of certInstances(ctx)) {
    for (const { port } of COMPONENTS[inst.role].tlsPorts(inst)) {
      const got = await probeTls(inst.host, port, tls);
      if (got.kind !== 'tls' || !got.authorized) {
        throw new StepError(`${inst.host}:${port} (${inst.unit}) does not serve a certificate of the new CA "${r.newCa!.info.subjectCN}" alone: ${got.error ?? got.kind}`, { suggestion: 're-run `tiseal tls rotate --ca` (it resumes)' });
      }
    }
  }
  const old = await issueLeaf(r.oldCa!, { commonName: TISEAL_CLIENT_CN, usage: 'client', days: 1, keyType: 'ecdsa' });
  for (const pd of certInstances(ctx).filter((i) => i.role === 'pd')) {
    const url = `https://${pd.host}:${pd.ports.client_port}/pd/api/v1/version`;
    // A request, not a bare handshake: under TLS 1.3 the server refuses a client certificate after it.
    const accepted = await request(url, { tls: { ca: r.newCa!.bundlePem, cert: old.certPem, key: old.keyPem }, timeoutMs: 5000 }).then(
      () => true,
      () => false,
    );
    if (accepted) {
      throw new StepError(`${pd.host}:${pd.ports.client_port} (${pd.unit}) still accepts a client certificate from the old CA "${r.oldCa!.info.subjectCN}"`, { suggestion: `restart ${pd.unit} on ${pd.host} (it reads ca.crt at start), then re-run \`tiseal tls rotate --ca\`` });
    }
  }
}

export function trustNewOnlySteps(r: CaRotation): Step<TlsContext>[] {
  return [
    pushBundleStep('trust-new', 'Trust only the new CA: ca.crt = new CA on every host', (x) => x.newCa!.bundlePem, ['new'], r, (hosts) => {
      // Only once every leaf is from the new CA: a host trusting only the new CA refuses an old leaf.
      const old = hosts.filter((h) => h.leaf !== 'new');
      if (old.length) throw new StepError(`${old[0].inst.host} ${old[0].inst.unit}: its certificate is not from the new CA${old.length > 1 ? ` (and ${old.length - 1} more)` : ''}, so no host may trust only the new CA yet`, { suggestion: 're-run `tiseal tls rotate --ca` (it reissues first)' });
    }),
    { ...rollingRestartStep('restart-trust-new', 'Rolling restart so no component trusts the old CA any more'), verify: (ctx) => servesNewCaOnly(ctx, r) },
  ];
}

/** Locally: the new CA becomes the cluster's CA; the old one is kept aside, never deleted. */
export function promoteStep(r: CaRotation): Step<TlsContext> {
  return {
    id: 'promote-ca',
    title: 'Make the new CA the cluster CA on this machine (the old one is kept aside)',
    async decide(ctx) {
      const retired = path.join(path.dirname(r.current.dir), `tls-retired-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`);
      return {
        actions: [
          {
            title: `move ${r.current.dir} to ${retired} and ${r.next.dir} to ${r.current.dir}`,
            run: async () => {
              fs.renameSync(r.current.dir, retired);
              fs.renameSync(r.next.dir, r.current.dir);
              ctx.notes.push(`the old CA is kept in ${retired} (delete it once nothing needs it)`);
            },
          },
        ],
      };
    },
  };
}

/** A leaf already from the new CA is kept unless --key-type asks for another key type. */
const keyTypeOk = (ctx: TlsContext, certPem: string) => !ctx.flags.keyType || certKeyType(certPem) === ctx.flags.keyType;
