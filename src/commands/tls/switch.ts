import { randomBytes } from 'crypto';
import { UsageError } from '../../errors';
import { checkExtraSans, parseDays, parseKeyType, parsePositiveInt, type GlobalOptions } from '../../options';
import { CertStore } from '../../pki';
import { tlsSteps } from '../../plans/tls';
import { ClusterLock } from '../../state/lock';
import { Journal } from '../../state/journal';
import { readMeta } from '../../state/meta';
import { recordStep } from '../../tasks/record';
import { checkCertificateInputs, keyTypeChangeOnly, startKeyPool } from '../../tasks/certs/issue';
import { pdInstances } from '../../topology';
import { DEFAULT_SCHEDULE, RESTART_SCHEDULES, RestartSchedule, TlsContext, TlsFlags } from '../../tasks/context';
import { factKey } from '../../tasks/facts';
import { allowedCallers } from '../../components/callers';
import { choosePds } from '../../tasks/pd/scale-in';
import { clientTlsFromCaOrHosts } from '../../tasks/certs/host-ca';
import { confirm } from '../prompt';
import { adoptTiupCa } from '../../tiup/adopt';
import { findTiupCluster } from '../../tiup/home';
import { noTiupMetaNote, tiupMetaStep } from '../../tiup/step';
import { closePdMarksStep } from '../../tasks/pd/traces';
import { endRun, newContext, openCluster, preflight, requireConfirmable, runSteps, storedClientTls } from '../cluster';

export function tlsFlags(flags: Record<string, unknown>): TlsFlags {
  const keyType = parseKeyType(flags.keyType);
  const schedule = String(flags.schedule ?? DEFAULT_SCHEDULE) as RestartSchedule;
  if (!RESTART_SCHEDULES.includes(schedule)) throw new UsageError(`invalid --schedule '${schedule}'`, `use one of: ${RESTART_SCHEDULES.join(', ')}`);
  if (Boolean(flags.caCert) !== Boolean(flags.caKey)) throw new UsageError('--ca-cert and --ca-key go together', 'pass both files (and --ca-chain for an intermediate CA)');
  if (flags.caChain && !flags.caCert) throw new UsageError('--ca-chain needs --ca-cert and --ca-key', 'pass the CA certificate and key too, or drop --ca-chain');
  return {
    keepPd: flags.keepPd as string | undefined,
    caCert: flags.caCert as string | undefined,
    caKey: flags.caKey as string | undefined,
    caChain: flags.caChain as string | undefined,
    verifyCn: Boolean(flags.verifyCn),
    extraSan: checkExtraSans(flags.extraSan as string[] | undefined),
    certDays: parseDays(flags.certDays, '--cert-days', 365),
    caDays: parseDays(flags.caDays, '--ca-days', 3650),
    keyType,
    cleanCertificate: Boolean(flags.cleanCertificate),
    schedule,
    transferTimeoutSec: flags.transferTimeout === undefined ? undefined : parsePositiveInt(String(flags.transferTimeout), '--transfer-timeout', 86_400),
  };
}

/** Flags that shape what a TLS switch converges to. */
const SHAPING_FLAGS = ['--verify-cn', '--ca-cert', '--ca-key', '--ca-chain', '--extra-san', '--cert-days', '--ca-days', '--key-type', '--schedule', '--keep-pd'];

/** Shaping flags the interrupted run was started with that this invocation does not give. */
export function flagsNotRepeated(startArgv: string[] | undefined, argv: string[]): string[] {
  const given = (a: string[]) => new Set(a.map((x) => x.split('=')[0]).filter((x) => SHAPING_FLAGS.includes(x)));
  const now = given(argv);
  return [...given(startArgv ?? [])].filter((f) => !now.has(f));
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
  if (ctx.opts.tiupMeta && !findTiupCluster(ctx.cluster.name)) lines.push(`Note: ${noTiupMetaNote(ctx.cluster.name)}.`);
  if (ctx.flags.schedule === 'stop-all') {
    lines.push("Files are staged first; then every component is stopped, and started again tier by tier (PD, TiKV, TiDB, TiFlash, TiCDC, ...) with TiUP's waits (TiUP's schedule).");
    lines.push('Applications get no SQL answer from the first stop until the TiDB tier is back.');
  } else if (ctx.flags.schedule === 'tiers') {
    lines.push('Files are staged first; then every component restarts tier by tier (PD, TiKV, TiDB, TiFlash, TiCDC, ...), each tier gated on health.');
    lines.push('Applications get no SQL answer from the PD restart until the TiDB tier is back (a TiDB on the old scheme gets no timestamp from PD).');
  } else {
    lines.push('Files are staged first; then every component is stopped at once, PD started, and everything else started as soon as PD listens.');
    lines.push('Applications get no SQL answer from the stop until TiDB is back (about the slowest single restart).');
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
  // RSA leaf keys are made on all cores while preflight reads the hosts.
  const keyPool = want === 'on' ? startKeyPool(topology, flags.keyType) : undefined;
  let notes: string[] | undefined; // set once the run went through
  try {
    if (!opts.dryRun) lock.acquire(`tiseal tls ${want === 'on' ? 'enable' : 'disable'} ${topologyFile}`);
    const journal = new Journal(cluster.journalFile);
    for (const p of journal.problems) process.stderr.write(`warning: ${p}\n`);
    if (lock.previous) process.stderr.write(`note: the previous run (${lock.previous.command ?? '?'}, pid ${lock.previous.pid}) ended without releasing the lock (killed?); taking it over\n`);
    readMeta(cluster.metaFile); // read again by the last step, after the cluster was converted: a broken one stops us here
    const open = rawFlags.restartRun ? undefined : journal.openRun();
    const resumingSame = open?.op === op;
    const resuming = open !== undefined; // an interrupted enable or disable: the cluster may be half-way
    const store = new CertStore(opts.stateDir, cluster.name);
    const adopted = await adoptTiupCa(store, opts);
    if (adopted) {
      process.stdout.write(`note: ${adopted.note}\n`);
      // --dry-run wrote nothing: plan the enable with TiUP's CA as a brought CA, not a new one.
      if (opts.dryRun && want === 'on' && !flags.caCert) Object.assign(flags, { caCert: adopted.tiup.tiup.caCert, caKey: adopted.tiup.tiup.caKey });
    }
    // No client certificate here (another machine, a lost state dir): one from the CA, or for disable PD's own from its host.
    const fallback = storedClientTls(store) || adopted ? undefined : await clientTlsFromCaOrHosts({ pool, topology }, store, want === 'off');
    if (fallback) process.stdout.write(`note: ${fallback.note}\n`);
    const ctx = newContext(
      { topology, cluster, pool, opts },
      {
        want,
        runId: resumingSame ? open!.runId : `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(2).toString('hex')}`,
        clientTls: storedClientTls(store) ?? adopted?.clientTls ?? fallback?.tls,
        flags,
        resuming,
        switchingTls: want === 'off' || resuming, // PD may be on http mid-switch
      },
    );
    ctx.keyPool = keyPool;
    checkCertificateInputs(ctx);
    await preflight(ctx, resuming);
    if (!resuming && ctx.resuming) process.stdout.write('No journal of an interrupted run here, but the hosts show one (warnings above): converging from the state the hosts are in (decided from the hosts).\n');
    if (!resuming && alreadyThere(ctx)) {
      const keyTypeChange = keyTypeChangeOnly(ctx, topologyFile);
      if (keyTypeChange) throw keyTypeChange;
      process.stdout.write(`TLS is already ${want} on every instance and every PD URL is ${want === 'on' ? 'https' : 'http'}: nothing to do, nothing restarted.\n`);
      // A run killed after converging (or another machine) left this machine's record behind: record what the hosts show.
      // Also what a run killed after its last restart did not get to: the PD marks closed, TiUP's record.
      if (!opts.dryRun) {
        const record = Boolean(readMeta(cluster.metaFile)?.enableTls) !== (want === 'on');
        // TiUP's tls/ needs tiseal's client certificate: a state dir holding only the CA files has none yet.
        const tiup = want === 'off' || storedClientTls(store) ? [tiupMetaStep] : [];
        await runSteps([closePdMarksStep, ...(record ? [recordStep] : []), ...tiup], ctx, `re-run \`tiseal tls ${want === 'on' ? 'enable' : 'disable'} ${topologyFile}\``);
        if (record) process.stdout.write(`note: ${cluster.metaFile} did not say TLS ${want}; it now records the state the hosts are in (decided from the hosts)\n`);
      }
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
    const dropped = resumingSame ? flagsNotRepeated(open!.argv, process.argv.slice(2)) : [];
    if (dropped.length) process.stderr.write(`note: the interrupted run was started with ${dropped.join(', ')}, not given now: this run converges to the flags given now\n`);
    else if (resuming) process.stdout.write(`An interrupted ${open!.op} run is left behind; converging from the state the hosts are in.\n`);
    if (!opts.dryRun && !resumingSame) journal.append({ type: 'run-start', op, runId: ctx.runId, at: new Date().toISOString(), argv: process.argv.slice(2) });
    const again = `fix the cause and re-run \`tiseal tls ${want === 'on' ? 'enable' : 'disable'} ${topologyFile}\` to resume, or run \`tiseal tls disable ${topologyFile}\` to roll back`;
    if (!(await runSteps(tlsSteps(ctx), ctx, again, { journal, doneBefore: resumingSame ? open!.done : undefined }))) return 0;
    journal.append({ type: 'run-done', op, runId: ctx.runId, at: new Date().toISOString() });
    process.stdout.write(`TLS is ${want} for cluster '${cluster.name}'${want === 'on' ? `; CA and tiseal client certificate in ${store.dir}` : ''}.\n`);
    notes = ctx.notes;
    return 0;
  } finally {
    await endRun({ keyPool, lock, close }, notes);
  }
}
