import { PreflightError } from '../errors';
import type { Step } from '../engine/step';
import { noop } from '../engine/step';
import { pdInstances } from '../topology';
import { versionAtLeast } from '../util/version';
import { ClusterFacts, factKey, gatherFacts } from './facts';
import type { TlsContext } from './context';

export interface Problem {
  severity: 'error' | 'warning';
  where: string;
  message: string;
  suggestion?: string;
}

/** Judge the facts. `resuming`: an interrupted run left the cluster half-way, so outages are expected. */
export function judgeFacts(ctx: TlsContext, facts: ClusterFacts, resuming: boolean): Problem[] {
  const problems: Problem[] = [];
  const soft = resuming ? 'warning' : 'error';
  for (const h of facts.hosts.values()) {
    if (!h.sudo) problems.push({ severity: 'error', where: h.host, message: `user ${ctx.opts.sshUser ?? ctx.user} cannot run sudo without a password`, suggestion: 'grant passwordless sudo to the deploy user, as TiUP requires (/etc/sudoers.d/<user>)' });
    if (h.clockSkewSec < -240) problems.push({ severity: 'error', where: h.host, message: `clock is ${Math.round(-h.clockSkewSec)} s behind this machine: new certificates would not be valid there yet`, suggestion: 'synchronise clocks (chrony/ntp) and re-run' });
    else if (Math.abs(h.clockSkewSec) > 30) problems.push({ severity: 'warning', where: h.host, message: `clock differs from this machine by ${Math.round(h.clockSkewSec)} s` });
    for (const [dir, kb] of Object.entries(h.freeKb)) if (kb < 10 * 1024) problems.push({ severity: 'error', where: h.host, message: `only ${kb} KiB free under ${dir}`, suggestion: 'free some disk space (tiseal writes backups and certificates there)' });
  }
  const pdNames = new Set(pdInstances(ctx.topology).map((p) => p.name));
  if (facts.members.length === 0) {
    problems.push({ severity: 'error', where: 'PD', message: 'no PD answered /pd/api/v1/members', suggestion: 'check that PD is running and reachable from this machine on its client port' });
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
    if (removedPd && !resuming) problems.push({ severity: 'error', where: at, message: `PD ${inst.name} is in the topology but not a member of the PD cluster`, suggestion: 'scale it out again with TiUP, or remove it from the topology' });
    if (f.config === 'partial') problems.push({ severity: 'warning', where: at, message: 'TLS is half configured (some keys or files only); tiseal will converge it' });
  }
  for (const inst of ctx.topology.instances.filter((i) => i.role === 'tikv' || i.role === 'tiflash')) {
    const port = inst.role === 'tikv' ? inst.ports.port : inst.ports.flash_service_port;
    const addr = inst.advertise.advertise_addr ?? `${inst.host}:${port}`;
    const s = facts.stores.find((st) => st.address === addr);
    if (facts.members.length > 0 && (!s || s.stateName !== 'Up')) problems.push({ severity: soft, where: `${inst.host} ${inst.unit}`, message: s ? `store ${s.id} is ${s.stateName}` : `PD does not know store ${addr}`, suggestion: 'bring the store back Up before converting' });
  }
  if (ctx.want === 'on' && ctx.topology.instances.some((i) => i.role === 'tiflash')) {
    const v = ctx.topology.componentVersions.tiflash ?? facts.pdVersion;
    if (versionAtLeast(v, [4, 0, 5]) === false) problems.push({ severity: 'error', where: 'TiFlash', message: `TiFlash ${v} does not support TLS (needs v4.0.5 or later)`, suggestion: 'upgrade the cluster first (tiup cluster upgrade)' });
  }
  return problems;
}

export function preflightStep(resuming: boolean): Step<TlsContext & { facts?: ClusterFacts; problems?: Problem[] }> {
  return {
    id: 'preflight',
    title: 'Preflight: SSH, sudo, units, PD, stores, TLS state, disk, clocks, versions',
      async decide(ctx) {
      const facts = await gatherFacts(ctx);
      const problems = judgeFacts(ctx, facts, resuming);
      ctx.facts = facts;
      ctx.problems = problems;
      const errors = problems.filter((p) => p.severity === 'error');
      if (errors.length > 0) {
        const first = errors[0];
        throw new PreflightError(`${first.where}: ${first.message}${errors.length > 1 ? ` (and ${errors.length - 1} more problem(s): ${errors.slice(1).map((e) => `${e.where}: ${e.message}`).join('; ')})` : ''}`, {
          suggestion: `${first.suggestion ?? 'fix it and re-run'}; nothing was changed on any host`,
        });
      }
      return noop(`${facts.hosts.size} hosts, ${ctx.topology.instances.length} instances checked${problems.length ? `; ${problems.length} warning(s)` : ''}`);
    },
  };
}
