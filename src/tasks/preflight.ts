import { PreflightError } from '../errors';
import type { Step } from '../engine/step';
import { noop } from '../engine/step';
import { pdInstances, storeAddress, tlsCoverageError } from '../topology';
import { versionAtLeast } from '../util/version';
import type { ClusterFacts, Problem } from './cluster-facts';
import { factKey, gatherFacts } from './facts';
import type { TlsContext } from './context';
import { checkRootPaths } from './path-safety';
import { checkPdDataDirs } from './pd/data-dir';
import { judgeRemovedPd, newestMark, MARKS, readPdTrace, RemovedPdVerdict, PdTrace } from './pd/traces';
import type { HostResumeContext } from './pd/start';
import type { Instance } from '../topology/types';
import { executorFor } from './context';
import { CertStore } from '../pki';
import { caKeyProblem, hostsOnTls, readHostCa } from './certs/host-ca';
import { readMeta } from '../state/meta';

export type { Problem } from './cluster-facts';

/** What the PD hosts say about an interrupted tiseal run (read when PD membership is short or PD is down). */
export interface HostEvidence {
  /** Verdict for each PD of the topology that is not a member. */
  removed: Map<string, RemovedPdVerdict>;
  /** No PD answers: the stopped PDs with their data that a killed run left stopped (started first). */
  toStart: Instance[];
  /** Why toStart is empty when no PD answers (for the refusal). */
  downEvidence?: string;
  /** The PD hosts carry dirs a tiseal run left (markers, backups). */
  traces: boolean;
}

// True with or without a journal: these facts are read from the hosts (the journal only says a run was cut short).
const FROM_HOSTS = 'decided from the hosts';

/** Read the traces tiseal leaves next to PD data dirs, and judge them. Read-only. */
export async function readHostEvidence(ctx: TlsContext, facts: ClusterFacts): Promise<HostEvidence> {
  const pds = pdInstances(ctx.topology);
  const down = facts.members.length === 0;
  const missing = pds.filter((p) => down || !facts.members.some((m) => m.name === p.name));
  const ev: HostEvidence = { removed: new Map(), toStart: [], traces: false };
  if (missing.length === 0) return ev;
  const traces = new Map<Instance, PdTrace>();
  for (const pd of missing) traces.set(pd, await readPdTrace(await executorFor(ctx, pd), pd));
  if (!down) {
    const verifiedAt = (() => {
      try {
        return readMeta(ctx.cluster.metaFile)?.verifiedAt;
      } catch {
        return undefined; // an unreadable meta.json is reported by preflight itself
      }
    })();
    for (const pd of missing) ev.removed.set(pd.name!, judgeRemovedPd(pd, traces.get(pd)!, verifiedAt));
    return ev;
  }
  const runs = [...traces.values()].flatMap((t) => [...t.marks, ...t.backups]);
  ev.traces = runs.length > 0;
  // A PD mid-removal (its marker newest) or with its data moved aside is not one to start.
  const startable = missing.filter((pd) => {
    const t = traces.get(pd)!;
    const unit = facts.instances.get(factKey(pd))?.unit;
    return unit?.loadState === 'loaded' && unit.activeState !== 'active' && t.hasData && !newestMark(t)?.includes(MARKS.removing);
  });
  if (runs.length > 0 && startable.length > 0) ev.toStart = startable;
  else ev.downEvidence = runs.length === 0 ? 'no trace of a tiseal run (tiseal-* dirs next to the PD data dirs or under backup/) on the PD hosts' : 'no stopped PD with its data intact on the PD hosts';
  return ev;
}

/** Judge the facts. `resuming`: an interrupted run left the cluster half-way, so outages are expected. */
export function judgeFacts(ctx: TlsContext, facts: ClusterFacts, resuming: boolean, evidence?: HostEvidence): Problem[] {
  const problems: Problem[] = [];
  const soft = resuming ? 'warning' : 'error';
  for (const h of facts.hosts.values()) {
    if (!h.sudo) problems.push({ severity: 'error', where: h.host, message: `user ${ctx.opts.sshUser ?? ctx.user} cannot run sudo without a password`, suggestion: 'grant passwordless sudo to the deploy user, as TiUP requires (/etc/sudoers.d/<user>)' });
    if (h.clockSkewSec < -240) problems.push({ severity: 'error', where: h.host, message: `clock is ${Math.round(-h.clockSkewSec)} s behind this machine: new certificates would not be valid there yet`, suggestion: 'synchronise clocks (chrony/ntp) and re-run' });
    else if (Math.abs(h.clockSkewSec) > 30) problems.push({ severity: 'warning', where: h.host, message: `clock differs from this machine by ${Math.round(h.clockSkewSec)} s` });
    for (const [dir, kb] of Object.entries(h.freeKb)) if (kb < 10 * 1024) problems.push({ severity: 'error', where: h.host, message: `only ${kb} KiB free under ${dir}`, suggestion: 'free some disk space (tiseal writes backups and certificates there)' });
  }
  const pdNames = new Set(pdInstances(ctx.topology).map((p) => p.name));
  if (facts.members.length === 0 && evidence?.toStart.length) {
    problems.push({ severity: 'warning', where: 'PD', message: `no PD answered /pd/api/v1/members; ${evidence.toStart.map((p) => `${p.unit} on ${p.host}`).join(', ')} is stopped with its data intact after a tiseal run: it is started first (${FROM_HOSTS})` });
  } else if (facts.members.length === 0) {
    const httpsOnly = ctx.pd.plaintextAllowed === false ? ` over https (${ctx.cluster.metaFile} records TLS on: plaintext is not tried)` : '';
    problems.push({
      severity: 'error',
      where: 'PD',
      message: `no PD answered /pd/api/v1/members${httpsOnly}${evidence?.downEvidence ? ` (${evidence.downEvidence})` : ''}`,
      suggestion: `check that PD is running and reachable from this machine on its client port${httpsOnly ? `; if TLS was turned off from another machine, move ${ctx.cluster.metaFile} aside` : ''}`,
    });
  }
  for (const m of facts.members) if (!pdNames.has(m.name)) problems.push({ severity: 'error', where: 'PD', message: `PD member ${m.name} is not in the topology`, suggestion: 'use the topology that describes this cluster (tiup cluster display <name>)' });
  for (const inst of ctx.topology.instances) {
    const f = facts.instances.get(factKey(inst));
    const at = `${inst.host} ${inst.unit}`;
    if (!f?.unit || f.unit.loadState !== 'loaded') {
      problems.push({ severity: 'error', where: at, message: 'systemd unit not found', suggestion: 'is this the right topology? TiUP creates /etc/systemd/system/<role>-<port>.service' });
      continue;
    }
    const removedPd = inst.role === 'pd' && facts.members.length > 0 && !facts.members.some((m) => m.name === inst.name);
    if (f.unit.activeState !== 'active' && !removedPd) problems.push({ severity: soft, where: at, message: `unit is ${f.unit.activeState}`, suggestion: `start it (sudo systemctl start ${inst.unit}) or fix it before converting` });
    const verdict = removedPd ? evidence?.removed.get(inst.name!) : undefined;
    if (removedPd && verdict?.byTiseal) problems.push({ severity: 'warning', where: at, message: `PD ${inst.name} is not a member: ${verdict.evidence}; it is re-added (${FROM_HOSTS})` });
    else if (removedPd && !resuming) problems.push({ severity: 'error', where: at, message: `PD ${inst.name} is in the topology but not a member of the PD cluster${verdict ? `: ${verdict.evidence}` : ''}`, suggestion: 'scale it out again with TiUP, or remove it from the topology' });
    if (f.config === 'partial') problems.push({ severity: 'warning', where: at, message: 'TLS is half configured (some keys or files only); tiseal will converge it' });
  }
  for (const inst of ctx.topology.instances.filter((i) => i.role === 'tikv' || i.role === 'tiflash')) {
    const addr = storeAddress(inst);
    const s = facts.stores.find((st) => st.address === addr);
    if (facts.members.length > 0 && (!s || s.stateName !== 'Up')) problems.push({ severity: soft, where: `${inst.host} ${inst.unit}`, message: s ? `store ${s.id} is ${s.stateName}` : `PD does not know store ${addr}`, suggestion: 'bring the store back Up before converting' });
  }
  if (ctx.want === 'on' && ctx.topology.instances.some((i) => i.role === 'tiflash')) {
    const v = ctx.topology.componentVersions.tiflash ?? facts.pdVersion;
    if (versionAtLeast(v, [4, 0, 5]) === false) problems.push({ severity: 'error', where: 'TiFlash', message: `TiFlash ${v} does not support TLS (needs v4.0.5 or later)`, suggestion: 'upgrade the cluster first (tiup cluster upgrade)' });
  }
  return problems;
}

/** `tls enable` on hosts already (half) on TLS needs the key of the CA they trust, here. */
async function enableCaProblem(ctx: TlsContext, facts: ClusterFacts) {
  if (ctx.want !== 'on' || ctx.flags.caCert || !hostsOnTls(ctx.topology.instances, (i) => facts.instances.get(factKey(i)))) return undefined;
  const hostCa = await readHostCa(ctx);
  if (!hostCa) return undefined;
  const store = new CertStore(ctx.opts.stateDir, ctx.cluster.name);
  return caKeyProblem(store, hostCa, { name: 'tls enable', topologyFile: ctx.topology.file, stateDir: ctx.opts.stateDir, cluster: ctx.cluster.name });
}

/** Do the hosts show a run tiseal did not finish (a PD it removed or stopped)? */
export const hostsShowInterruptedRun = (ev: HostEvidence) => ev.toStart.length > 0 || [...ev.removed.values()].some((v) => v.byTiseal);

export interface PreflightScope {
  /**
   * The command switches or reissues cluster TLS (tls enable/disable/rotate): every instance of
   * the topology must be one tiseal converts, or nothing starts (src/topology/tls-coverage.ts).
   */
  clusterTls: boolean;
  /**
   * The command has already matched the hosts' CA against every CA it may use (`tls rotate`: the
   * cluster CA, or the new one of a CA move the hosts are part-way through), so the enable check,
   * which knows only the cluster CA, must not refuse a move that is past trust-new-only.
   */
  caChecked?: boolean;
}

export function preflightStep(resuming: boolean, scope: PreflightScope = { clusterTls: true }): Step<HostResumeContext & { facts?: ClusterFacts; problems?: Problem[] }> {
  return {
    id: 'preflight',
    title: 'Preflight: SSH, sudo, units, PD, stores, TLS state, disk, clocks, versions',
    async decide(ctx) {
      // Read from the file alone, before any host is asked anything.
      const uncovered = scope.clusterTls ? tlsCoverageError(ctx.topology) : undefined;
      if (uncovered) throw uncovered;
      let facts = await gatherFacts(ctx);
      let evidence = await readHostEvidence(ctx, facts);
      if (!resuming && facts.members.length === 0 && evidence.traces && evidence.toStart.length === 0) {
        // A PD still starting under a killed run's restart: give it the moment a journal resume gets.
        ctx.resuming = true;
        facts = await gatherFacts(ctx);
        ctx.resuming = false;
        evidence = await readHostEvidence(ctx, facts);
      }
      // The root cause first: without the hosts' CA key an enable cannot issue, nor even reach PD.
      const caError = scope.caChecked ? undefined : await enableCaProblem(ctx, facts);
      if (caError) throw caError;
      // The journal is a record, not the source of truth: without one, the hosts tell whether a run was cut short.
      const fromHosts = !resuming && hostsShowInterruptedRun(evidence);
      const problems = judgeFacts(ctx, facts, resuming || fromHosts, evidence);
      if (fromHosts) ctx.resuming = true;
      ctx.pdsToStart = evidence.toStart;
      ctx.facts = facts;
      ctx.problems = problems;
      const errors = problems.filter((p) => p.severity === 'error');
      if (errors.length > 0) {
        const first = errors[0];
        throw new PreflightError(`${first.where}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more problem(s): ${errors.slice(1).map((e) => `${e.where}: ${e.message}`).join('; ')})` : ''}`, {
          suggestion: `${first.suggestion ?? 'fix it and re-run'}; nothing was changed on any host`,
        });
      }
      await checkRootPaths(ctx); // no planted symlink on a path root will write (src/tasks/path-safety.ts)
      await checkPdDataDirs(ctx); // a PD data dir root may move is the deployed one (src/tasks/pd/data-dir.ts)
      return noop(`${facts.hosts.size} hosts, ${ctx.topology.instances.length} instances checked${problems.length ? `; ${problems.length} warning(s)` : ''}`);
    },
  };
}
