import { CertError } from '../../errors';
import { tlsPaths } from '../../components/tls-paths';
import { CertStore, issueLeaf, parseBundle } from '../../pki';
import type { Instance, Topology } from '../../topology/types';
import type { ClientTls } from '../../util/http';
import type { ExecutorPool } from '../../ssh/executor';
import { pdInstances } from '../../topology';
import { executorFor } from '../context';
import { readRemoteText } from '../remote';
import { TISEAL_CLIENT_CN } from './issue';

/** The CA bundle the hosts trust (`<deploy>/tls/ca.crt`), identified by fingerprint. */
export interface HostCa {
  host: string;
  file: string;
  pem: string;
  /** One per certificate of the bundle (two during a CA rotation). */
  cas: Array<{ cn: string; fingerprint: string }>;
}

/** The first `tls/ca.crt` found on the hosts, PDs first (read as root, no symlink followed). */
export async function readHostCa(ctx: { pool: ExecutorPool; topology: Topology }): Promise<HostCa | undefined> {
  const order = [...pdInstances(ctx.topology), ...ctx.topology.instances.filter((i) => i.role !== 'pd')];
  for (const inst of order) {
    const file = tlsPaths(inst).ca;
    const pem = await readRemoteText(await executorFor(ctx, inst), file).catch(() => undefined);
    if (!pem) continue;
    try {
      const cas = parseBundle(pem).map((c) => ({ cn: c.subjectCN, fingerprint: c.fingerprintSha256 }));
      if (cas.length) return { host: inst.host, file, pem, cas };
    } catch {
      /* not a certificate: look on */
    }
  }
  return undefined;
}

const describe = (h: HostCa) => h.cas.map((c) => `CN "${c.cn}", SHA-256 ${c.fingerprint}`).join(' + ');

/**
 * Whether this machine holds the CA the hosts trust, for commands that issue certificates (enable
 * on a cluster already (half) on TLS, rotate, cert client). The error says which files to bring
 * from where, and that `tls disable` needs no CA key.
 */
export function caKeyProblem(store: CertStore, hostCa: HostCa, cmd: { name: string; topologyFile: string; stateDir: string; cluster: string }): CertError | undefined {
  const disable = `or run \`tiseal tls disable ${cmd.topologyFile}\` (it needs no CA key) to go back to plaintext`;
  const bring = `copy ca.crt and ca.key from the machine that turned TLS on (its <state dir>/clusters/${cmd.cluster}/tls/) into ${store.dir}, the CA whose \`openssl x509 -noout -fingerprint -sha256 -in ca.crt\` is ${hostCa.cas[0].fingerprint}`;
  if (!store.hasCA()) {
    return new CertError(`${cmd.name}: the hosts trust the CA in ${hostCa.host}:${hostCa.file} (${describe(hostCa)}), but its key is not on this machine (${store.caKeyPath} is missing)`, {
      suggestion: `${bring}; ${disable}`,
    });
  }
  let local: string;
  try {
    local = store.loadCA({ allowExpired: true }).info.fingerprintSha256;
  } catch (e) {
    return new CertError(`${cmd.name}: ${store.dir}: ${(e as Error).message}`, { suggestion: `${bring}; ${disable}` });
  }
  if (!hostCa.cas.some((c) => c.fingerprint === local)) {
    return new CertError(`${cmd.name}: the CA in ${store.dir} (SHA-256 ${local}) is not the one the hosts trust (${hostCa.host}:${hostCa.file}: ${describe(hostCa)})`, {
      suggestion: `${bring} (move the present files aside first); ${disable}`,
    });
  }
  return undefined;
}

/**
 * Client TLS to reach a cluster on TLS when this machine has no client certificate: one issued in
 * memory from the CA in the store, else (disable: no CA key needed) the PD's own certificate and
 * key read from its host, kept in memory only. Returns a note saying which.
 */
export async function clientTlsFromCaOrHosts(ctx: { pool: ExecutorPool; topology: Topology }, store: CertStore, allowHostCert: boolean): Promise<{ tls: ClientTls; note: string } | undefined> {
  if (store.hasCA()) {
    try {
      const ca = store.loadCA({ allowExpired: true });
      const c = await issueLeaf(ca, { commonName: TISEAL_CLIENT_CN, usage: 'client', days: 2, keyType: 'ecdsa' });
      return { tls: { ca: ca.bundlePem, cert: c.certPem, key: c.keyPem }, note: `no client certificate in ${store.dir}: using one issued in memory from the CA there` };
    } catch {
      /* an unusable CA: the run reports it where it needs the CA */
    }
  }
  if (!allowHostCert) return undefined;
  for (const pd of pdInstances(ctx.topology)) {
    const exec = await executorFor(ctx, pd);
    const p = tlsPaths(pd);
    const [ca, cert, key] = await Promise.all([p.ca, p.cert, p.key].map((f) => readRemoteText(exec, f).catch(() => undefined)));
    if (ca && cert && key) return { tls: { ca, cert, key }, note: `no CA in ${store.dir}: calling PD with ${pd.name}'s own certificate from ${pd.host}:${p.cert} (held in memory, not saved)` };
  }
  return undefined;
}

export const hostsOnTls = (instances: Instance[], state: (i: Instance) => { config: string; live?: { kind: string } } | undefined): boolean =>
  instances.some((i) => {
    const f = state(i);
    return f !== undefined && (f.config !== 'off' || f.live?.kind === 'tls');
  });

/**
 * `tls rotate [--ca]` from a machine that lacks a CA the hosts trust. A CA move's phase is in the
 * hosts' bundle: two CAs while trusting both, one (the new) once the move is past trust-new-only.
 */
export function rotationCaProblem(current: CertStore, next: CertStore, hostCa: HostCa, cmd: { name: string; topologyFile: string; cluster: string }): CertError | undefined {
  const fp = (s: CertStore) => {
    try {
      return s.hasCA() ? s.loadCA({ allowExpired: true }).info.fingerprintSha256 : undefined;
    } catch {
      return undefined;
    }
  };
  const known = new Set([fp(current), fp(next)].filter(Boolean));
  const unknown = hostCa.cas.filter((c) => !known.has(c.fingerprint));
  if (unknown.length === 0) return undefined;
  const phase = hostCa.cas.length > 1 ? 'a move between two CAs is under way (the hosts trust both)' : 'the hosts trust only this CA';
  const which = unknown.map((c) => `CN "${c.cn}", SHA-256 ${c.fingerprint}`).join(' and ');
  return new CertError(`${cmd.name}: ${phase}: ${hostCa.host}:${hostCa.file} has ${which}, whose key is not on this machine`, {
    suggestion: `copy that CA's ca.crt and ca.key from the machine that ran \`tiseal tls rotate --ca\` (its <state dir>/clusters/${cmd.cluster}/tls-next/, or tls/ once the move finished) into ${hostCa.cas.length > 1 ? next.dir : current.dir}; or run \`tiseal tls disable ${cmd.topologyFile}\` (it needs no CA key) to go back to plaintext`,
  });
}
