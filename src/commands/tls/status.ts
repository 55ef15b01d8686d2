import { COMPONENTS, tlsPaths } from '../../components';
import { pdAllowListSkipped } from '../../components/callers';
import { probeTls } from '../../net/probe';
import type { GlobalOptions } from '../../options';
import { PdClient } from '../../pd/client';
import { CertStore, parseCertificate } from '../../pki';
import { readMeta } from '../../state/meta';
import { readInstanceTls } from '../../tasks/facts';
import { executorFor } from '../../tasks/context';
import { forceLeftoverProblem, readForceLeftovers } from '../../tasks/pd/force-once';
import { pdInstances } from '../../topology';
import type { Instance, Topology } from '../../topology/types';
import type { ClientTls } from '../../util/http';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { OpenedCluster, openCluster } from '../cluster';
import { adoptTiupCa } from '../../tiup/adopt';

export const WARN_DAYS = 30;

/** One row of `tls status --json` (schema documented in docs/tls-status.schema.json). */
export interface PortStatus {
  name: string;
  port: number;
  /** what the port speaks now */
  live: 'tls' | 'plain' | 'closed';
  /** chain verifies against the local CA and the certificate names this host */
  verified: boolean;
  subject?: string;
  issuer?: string;
  serial?: string;
  sans?: string[];
  notAfter?: string;
  daysLeft?: number;
  protocol?: string;
  error?: string;
}

export interface InstanceStatus {
  id: string;
  role: string;
  host: string;
  unit: string;
  configured: 'on' | 'off' | 'partial' | 'unknown';
  caPath: string;
  certPath: string;
  keyPath: string;
  ports: PortStatus[];
  level: 'ok' | 'warning' | 'error';
  problems: string[];
  /** CN allow-list in the config (`--verify-cn`), when there is one. */
  allowedCn?: string[];
  /** What the operator should know that is not a problem (e.g. PD before v8.4 has no allow-list). */
  notes?: string[];
}

export interface StatusReport {
  cluster: string;
  ca?: { path: string; subject: string; notAfter: string; daysLeft: number };
  client?: { certPath: string; keyPath: string; subject: string; notAfter: string; daysLeft: number };
  instances: InstanceStatus[];
  level: 'ok' | 'warning' | 'error';
}

const days = (d: Date | string) => Math.floor((new Date(d).getTime() - Date.now()) / 86_400_000);
const worst = (levels: Array<'ok' | 'warning' | 'error'>) => (levels.includes('error') ? 'error' : levels.includes('warning') ? 'warning' : 'ok');

export function judge(inst: InstanceStatus): void {
  const live = inst.ports.map((p) => p.live).filter((l) => l !== 'closed');
  if (inst.configured === 'partial') inst.problems.push('TLS is half configured');
  if (inst.configured === 'on' && live.includes('plain')) inst.problems.push('configured for TLS but a port serves plaintext (restart pending?)');
  if (inst.configured === 'off' && live.includes('tls')) inst.problems.push('TLS is off in the config but a port serves TLS (restart pending?)');
  for (const p of inst.ports) {
    if (p.live !== 'tls') continue;
    if (!p.verified) inst.problems.push(`${p.name} ${p.port}: certificate not verified (${p.error ?? 'unknown issuer'})`);
    if (p.daysLeft !== undefined && p.daysLeft < 0) inst.problems.push(`${p.name} ${p.port}: certificate EXPIRED ${p.notAfter}`);
  }
  const error = inst.problems.length > 0;
  const soon = inst.ports.some((p) => p.daysLeft !== undefined && p.daysLeft >= 0 && p.daysLeft < WARN_DAYS);
  if (soon) inst.problems.push(`certificate expires in fewer than ${WARN_DAYS} days`);
  inst.level = error ? 'error' : soon ? 'warning' : 'ok';
}

/** The cluster's PD version: the topology's, else PD's own answer; undefined when neither says. */
export async function clusterPdVersion(topology: Topology, pd: () => PdClient): Promise<string | undefined> {
  const given = topology.componentVersions.pd ?? topology.clusterVersion;
  if (given) return given;
  try {
    return (await pd().status()).version;
  } catch {
    return undefined;
  }
}

/**
 * Under --verify-cn a PD before v8.4.0 is left without cert-allowed-cn (pdAllowListSkipped): each
 * PD on TLS without a list gets the note, so the missing list reads as a decision, not a fault.
 */
export function notePdAllowList(instances: InstanceStatus[], verifyCn: boolean, pdVersion: string | undefined): void {
  const note = verifyCn ? pdAllowListSkipped(pdVersion) : undefined;
  if (!note) return;
  for (const i of instances) if (i.role === 'pd' && i.configured === 'on' && !i.allowedCn?.length) (i.notes ??= []).push(note);
}

function verifyCnRecorded(metaFile: string): boolean {
  try {
    return readMeta(metaFile)?.verifyCn === true;
  } catch {
    return false;
  }
}

/**
 * Status of every instance, over an opened cluster (its SSH pool is reused, not closed; with
 * `releaseHosts` each host's connection is closed as soon as its instances are read).
 */
export async function collectStatus(opened: Pick<OpenedCluster, 'topology' | 'cluster' | 'pool'>, opts: GlobalOptions, { releaseHosts = false } = {}): Promise<StatusReport> {
  const { topology, cluster, pool } = opened;
  const store = new CertStore(opts.stateDir, cluster.name);
  const ca = store.hasCA() ? store.loadCA({ allowExpired: true }) : undefined;
  const client = ca ? store.loadClient() : null;
  const report: StatusReport = { cluster: cluster.name, instances: [], level: 'ok' };
  if (ca) report.ca = { path: store.caCertPath, subject: ca.info.subjectCN, notAfter: ca.info.notAfter.toISOString(), daysLeft: days(ca.info.notAfter) };
  if (client) {
    const info = parseCertificate(client.certPem);
    report.client = { certPath: store.clientCertPath, keyPath: store.clientKeyPath, subject: info.subjectCN, notAfter: info.notAfter.toISOString(), daysLeft: days(info.notAfter) };
  }
  const ctx = { pool };
  const instanceStatus = async (inst: Instance): Promise<InstanceStatus> => {
    const paths = tlsPaths(inst);
    let configured: InstanceStatus['configured'] = 'unknown';
    let allowedCn: string[] | undefined;
    const problems: string[] = [];
    try {
      ({ state: configured, allowedCn } = await readInstanceTls(ctx, inst));
    } catch (e) {
      problems.push(`cannot read config: ${(e as Error).message}`);
    }
    if (inst.role === 'pd') {
      const left = await readForceLeftovers(await executorFor(ctx, inst), inst).then(
        (l) => forceLeftoverProblem(inst, l),
        (e: Error) => `cannot check for --force-new-cluster: ${e.message}`,
      );
      if (left) problems.push(left);
    }
    const ports: PortStatus[] = [];
    for (const { name, port } of COMPONENTS[inst.role].tlsPorts(inst)) {
      const r = await probeTls(inst.host, port, { ca: ca?.bundlePem, cert: client?.certPem, key: client?.keyPem });
      ports.push({
        name,
        port,
        live: r.kind,
        verified: r.kind === 'tls' && Boolean(r.authorized),
        subject: r.peer?.subject.replace(/\n/g, ', '),
        issuer: r.peer?.issuer.replace(/\n/g, ', '),
        serial: r.peer?.serialHex,
        sans: r.peer?.sans,
        notAfter: r.peer ? new Date(r.peer.notAfter).toISOString() : undefined,
        daysLeft: r.peer ? days(r.peer.notAfter) : undefined,
        protocol: r.protocol,
        error: r.kind === 'tls' && !r.authorized ? r.error : r.kind === 'closed' ? r.error : undefined,
      });
    }
    const st: InstanceStatus = { id: inst.id, role: inst.role, host: inst.host, unit: inst.unit, configured, caPath: paths.ca, certPath: paths.cert, keyPath: paths.key, ports, level: 'ok', problems };
    if (allowedCn?.length) st.allowedCn = allowedCn;
    judge(st);
    return st;
  };
  // Host by host, its instances together; a host's connection closes once they are read (when the
  // caller needs no more of it), so open connections stay at the width, not the cluster's size.
  const byHost = new Map<string, Instance[]>();
  for (const inst of topology.instances) {
    const key = `${inst.manageHost ?? inst.host}:${inst.sshPort}`;
    byHost.set(key, [...(byHost.get(key) ?? []), inst]);
  }
  const done = new Map<Instance, InstanceStatus>();
  await mapLimit([...byHost.values()], readConcurrency(opts), async (insts) => {
    for (const [k, st] of (await Promise.all(insts.map(instanceStatus))).entries()) done.set(insts[k], st);
    if (releaseHosts) await pool.release?.(insts[0].manageHost ?? insts[0].host, insts[0].sshPort);
  });
  report.instances = topology.instances.map((inst) => done.get(inst)!);
  // --verify-cn as recorded here, or as the hosts show it (another component has a list).
  const verifyCn = verifyCnRecorded(cluster.metaFile) || report.instances.some((i) => i.allowedCn?.length);
  const pdWithoutList = report.instances.some((i) => i.role === 'pd' && i.configured === 'on' && !i.allowedCn?.length);
  if (verifyCn && pdWithoutList) {
    const clientTls: ClientTls | undefined = ca && client ? { ca: ca.bundlePem, cert: client.certPem, key: client.keyPem } : undefined;
    const pd = () => new PdClient(pdInstances(topology).map((p) => `${p.host}:${p.ports.client_port}`), clientTls, { tlsOnly: 'PD is configured for TLS' });
    notePdAllowList(report.instances, verifyCn, await clusterPdVersion(topology, pd));
  }
  const caLevel = report.ca && report.ca.daysLeft < 0 ? 'error' : report.ca && report.ca.daysLeft < WARN_DAYS ? 'warning' : 'ok';
  report.level = worst([caLevel, ...report.instances.map((i) => i.level)]);
  return report;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}

export function renderStatus(r: StatusReport): string {
  const out: string[] = [`Cluster: ${r.cluster}`];
  out.push(r.ca ? `CA:      ${r.ca.path} (${r.ca.subject}, expires ${r.ca.notAfter.slice(0, 10)}, ${r.ca.daysLeft} days)` : 'CA:      none (TLS was never enabled by tiseal for this cluster)');
  if (r.client) out.push(`Client:  ${r.client.certPath} / ${r.client.keyPath} (CN ${r.client.subject}, ${r.client.daysLeft} days)`);
  const rows = [['ID', 'Role', 'Host', 'Config', 'Live', 'Verified', 'Expires', 'Days', 'Status']];
  for (const i of r.instances) {
    const tlsPorts = i.ports.filter((p) => p.live === 'tls');
    const live = i.ports.length === 0 ? '-' : i.ports.map((p) => `${p.port}:${p.live}`).join(' ');
    const minDays = tlsPorts.length ? Math.min(...tlsPorts.map((p) => p.daysLeft ?? Infinity)) : undefined;
    const exp = tlsPorts.find((p) => p.daysLeft === minDays)?.notAfter?.slice(0, 10) ?? '-';
    rows.push([`${i.host}:${i.id.split('-').pop()}`, i.role, i.host, i.configured, live, tlsPorts.length ? (tlsPorts.every((p) => p.verified) ? 'yes' : 'NO') : '-', exp, minDays === undefined ? '-' : String(minDays), i.level === 'ok' ? 'ok' : `${i.level}: ${i.problems.join('; ')}`]);
  }
  out.push('', table(rows));
  const notes = r.instances.flatMap((i) => (i.notes ?? []).map((n) => `note: ${i.host}:${i.id}: ${n}`));
  if (notes.length) out.push('', ...notes);
  out.push('', `Overall: ${r.level}`);
  return out.join('\n');
}

/** Exit code: 0 all ok, 3 warnings only (e.g. expiring within 30 days), 1 any error. */
export const statusExitCode = (r: StatusReport) => (r.level === 'error' ? 1 : r.level === 'warning' ? 3 : 0);

export async function run(topologyFile: string, _flags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  const opened = await openCluster(topologyFile, opts);
  // Adopting copies TiUP's CA into the state dir; it changes no host, so even --dry-run may read it.
  const adopted = await adoptTiupCa(new CertStore(opts.stateDir, opened.cluster.name), { ...opts, dryRun: false }).catch(async (e) => {
    await opened.close();
    throw e;
  });
  if (adopted) process.stderr.write(`note: ${adopted.note}\n`);
  const report = await collectStatus(opened, opts, { releaseHosts: true }).finally(() => opened.close());
  process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : renderStatus(report) + '\n');
  return statusExitCode(report);
}
