import { randomBytes } from 'crypto';
import { UsageError } from '../errors';
import type { GlobalOptions } from '../options';
import { CertStore, KeyType, KEY_TYPES } from '../pki';
import { tlsSteps } from '../plans/tls';
import { ClusterLock } from '../state/lock';
import { Journal } from '../state/journal';
import { pdInstances } from '../topology';
import { RESTART_SCHEDULES, RestartSchedule, TlsContext, TlsFlags } from '../tasks/context';
import { factKey } from '../tasks/facts';
import { allowedCallers } from '../components/callers';
import { choosePds } from '../tasks/scale-in';
import { confirm } from './prompt';
import { newContext, openCluster, preflight, requireConfirmable, runSteps, storedClientTls } from './cluster';

function intFlag(v: unknown, flag: string, def: number): number {
  if (v === undefined) return def;
  if (!/^\d+$/.test(String(v)) || Number(v) < 1) throw new UsageError(`invalid ${flag} '${v}' (expected a positive number of days)`);
  return Number(v);
}

export function tlsFlags(flags: Record<string, unknown>): TlsFlags {
  const keyType = String(flags.keyType ?? 'rsa') as KeyType;
  const schedule = String(flags.schedule ?? 'tiers') as RestartSchedule;
  if (!RESTART_SCHEDULES.includes(schedule)) throw new UsageError(`invalid --schedule '${schedule}'`, `use one of: ${RESTART_SCHEDULES.join(', ')}`);
  if (!KEY_TYPES.includes(keyType)) throw new UsageError(`invalid --key-type '${keyType}'`, `use one of: ${KEY_TYPES.join(', ')}`);
  return {
    keepPd: flags.keepPd as string | undefined,
    caCert: flags.caCert as string | undefined,
    caKey: flags.caKey as string | undefined,
    caChain: flags.caChain as string | undefined,
    verifyCn: Boolean(flags.verifyCn),
    extraSan: flags.extraSan as string[] | undefined,
    certDays: intFlag(flags.certDays, '--cert-days', 365),
    caDays: intFlag(flags.caDays, '--ca-days', 3650),
    keyType,
    cleanCertificate: Boolean(flags.cleanCertificate),
    schedule,
  };
}

/** Is the cluster already fully in the wanted state (configs, live ports, PD URLs and members)? */
function alreadyThere(ctx: TlsContext): boolean {
  const facts = ctx.facts!;
  const scheme = ctx.want === 'on' ? 'https' : 'http';
  const live = ctx.want === 'on' ? 'tls' : 'plain';
  const pdCount = pdInstances(ctx.topology).length;
  return (
    facts.members.length === pdCount &&
    facts.members.every((m) => m.peerUrls.every((u) => u.startsWith(`${scheme}://`)) && m.clientUrls.every((u) => u.startsWith(`${scheme}://`))) &&
    ctx.topology.instances.every((i) => {
      const f = facts.instances.get(factKey(i));
      const wantCn = ctx.want === 'on' && ctx.flags.verifyCn ? allowedCallers(i.role, facts.pdVersion ?? ctx.topology.componentVersions.pd)?.cns : undefined;
      const sameCn = JSON.stringify([...(f?.allowedCn ?? [])].sort()) === JSON.stringify([...(wantCn ?? [])].sort());
      return f && f.config === ctx.want && sameCn && (!f.live || f.live.kind === live);
    })
  );
}

function describePlan(ctx: TlsContext): string {
  const hosts = ctx.topology.hosts.map((h) => h.host).join(', ');
  const lines = [
    `tiseal will turn TLS ${ctx.want.toUpperCase()} for cluster '${ctx.cluster.name}' (${ctx.topology.instances.length} instances on ${ctx.topology.hosts.length} hosts: ${hosts}).`,
  ];
  if (ctx.removedPds.length > 0) {
    lines.push(`PD is scaled in to ${ctx.keepPd!.name}: ${ctx.removedPds.map((p) => p.name).join(', ')} are removed (data moved aside, not deleted) and re-added afterwards.`);
  }
  if (ctx.flags.schedule === 'stop-all') {
    lines.push('Files are staged first; then every component is stopped, and started again in tiers (PD, TiKV, TiDB, TiFlash, TiCDC, ...).');
    lines.push('The cluster does not serve requests from the first stop until the TiDB tier is back.');
  } else {
    lines.push('Files are staged first; then every component restarts in tiers (PD, TiKV, TiDB, TiFlash, TiCDC, ...).');
    lines.push('The cluster does not serve requests while PD restarts, nor while the TiDB tier restarts (seconds each).');
  }
  return lines.join('\n  ');
}

/** `tiseal tls enable|disable`: lock, preflight, confirm, then the resumable step list. */
export async function runTlsSwitch(want: 'on' | 'off', topologyFile: string, rawFlags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  const op = want === 'on' ? 'tls-enable' : 'tls-disable';
  const flags = tlsFlags(rawFlags);
  requireConfirmable(opts);
  const { topology, cluster, pool, close } = await openCluster(topologyFile, opts);
  const lock = new ClusterLock(cluster.lockFile);
  try {
    if (!opts.dryRun) lock.acquire(`tiseal tls ${want === 'on' ? 'enable' : 'disable'} ${topologyFile}`);
    const journal = new Journal(cluster.journalFile);
    const open = rawFlags.restartRun ? undefined : journal.openRun();
    const resumingSame = open?.op === op;
    const resuming = open !== undefined; // an interrupted enable or disable: the cluster may be half-way
    const store = new CertStore(opts.stateDir, cluster.name);
    const ctx = newContext(
      { topology, cluster, pool, opts },
      {
        want,
        runId: resumingSame ? open!.runId : `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(2).toString('hex')}`,
        clientTls: storedClientTls(store),
        flags,
        resuming,
      },
    );
    await preflight(ctx, resuming);
    if (!resuming && alreadyThere(ctx)) {
      process.stdout.write(`TLS is already ${want} on every instance and every PD URL is ${want === 'on' ? 'https' : 'http'}: nothing to do, nothing restarted.\n`);
      return 0;
    }
    await choosePds(ctx);
    if (!opts.yes && !opts.dryRun) {
      if (!(await confirm(`${describePlan(ctx)}\n  Proceed?`))) {
        process.stdout.write('Nothing was changed.\n');
        return 1;
      }
      if (want === 'off' && flags.cleanCertificate && !(await confirm(`--clean-certificate: delete tls/ on every host and the CA in ${store.dir}? Certificates cannot be recovered.`))) {
        process.stdout.write('Nothing was changed.\n');
        return 1;
      }
    }
    if (resumingSame) process.stdout.write(`Resuming the interrupted run ${open!.runId} (done: ${[...open!.done].join(', ') || 'nothing'}).\n`);
    else if (resuming) process.stdout.write(`An interrupted ${open!.op} run is left behind; converging from the state the hosts are in.\n`);
    if (!opts.dryRun && !resumingSame) journal.append({ type: 'run-start', op, runId: ctx.runId, at: new Date().toISOString(), argv: process.argv.slice(2) });
    const again = `fix the cause and re-run \`tiseal tls ${want === 'on' ? 'enable' : 'disable'} ${topologyFile}\` to resume, or run \`tiseal tls disable ${topologyFile}\` to roll back`;
    if (!(await runSteps(tlsSteps(ctx), ctx, again, { journal, doneBefore: resumingSame ? open!.done : undefined }))) return 0;
    journal.append({ type: 'run-done', op, runId: ctx.runId, at: new Date().toISOString() });
    process.stdout.write(`TLS is ${want} for cluster '${cluster.name}'${want === 'on' ? `; CA and tiseal client certificate in ${store.dir}` : ''}.\n`);
    for (const n of ctx.notes) process.stdout.write(`note: ${n}\n`);
    return 0;
  } finally {
    lock.release();
    await close();
  }
}
