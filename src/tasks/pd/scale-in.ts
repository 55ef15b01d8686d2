import * as fs from 'fs';
import { StepError } from '../../errors';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { instancesToTiupYaml, pdInstances } from '../../topology';
import type { Instance } from '../../topology/types';
import { waitFor } from '../../util/concurrency';
import { shq } from '../../util/shell';
import { writeFileAtomic } from '../../state/files';
import { executorFor, pdEndpoint, TlsContext } from '../context';
import { unitStates } from '../remote';
import { MARKS } from './traces';
import { deleteMemberById, memberOf } from './join';
import type { HostResumeContext } from './start';

/**
 * Which PD stays while the others are removed: --keep-pd, else the current leader. Members on
 * different schemes cannot talk (tikv/pd#2996), so the switch happens on a one-member PD.
 */
export async function choosePds(ctx: TlsContext): Promise<void> {
  const pds = pdInstances(ctx.topology);
  let keep: Instance | undefined;
  if (ctx.flags.keepPd) {
    keep = pds.find((p) => p.name === ctx.flags.keepPd);
    if (!keep) throw new StepError(`--keep-pd ${ctx.flags.keepPd}: no PD with that name in ${ctx.topology.file}`, { suggestion: `choose one of: ${pds.map((p) => p.name).join(', ')}` });
  } else {
    // Every PD down after a killed run (preflight read the hosts): keep the one it starts first.
    const toStart = (ctx as HostResumeContext).pdsToStart ?? [];
    const { members, leader } = await ctx.pd.members().catch((e) => {
      if (toStart.length === 0) throw e;
      return { members: [toStart[0]].map((p) => ({ name: p.name! })), leader: { name: toStart[0].name! } };
    });
    keep = pds.find((p) => p.name === leader?.name);
    // Resuming after scale-in: the only member left is the one we kept.
    if (!keep && members.length === 1) keep = pds.find((p) => p.name === members[0].name);
    if (!keep) throw new StepError('cannot tell which PD to keep: PD reports no leader', { suggestion: 'wait for PD to elect a leader, or pass --keep-pd <name>' });
  }
  ctx.keepPd = keep;
  ctx.removedPds = pds.filter((p) => p !== keep);
}

export const savePdStep: Step<TlsContext> = {
  id: 'save-pd',
  title: 'Save the PD members that will be removed and re-added (scale-pd.yaml)',
  async decide(ctx) {
    if (!ctx.keepPd) await choosePds(ctx);
    if (ctx.removedPds.length === 0) return noop('single PD: no scale-in needed');
    const file = ctx.cluster.scalePdFile;
    const yaml = instancesToTiupYaml(ctx.removedPds);
    if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === yaml) return noop(`${file} is current; keeping ${ctx.keepPd!.name}`);
    return {
      actions: [
        {
          title: `write ${file} (${ctx.removedPds.map((p) => p.name).join(', ')}; keeping ${ctx.keepPd!.name})`,
          run: async () => writeFileAtomic(file, yaml, 0o600),
        },
      ],
    };
  },
};

async function removePd(ctx: TlsContext, pd: Instance, member: { id: string; name: string } | undefined): Promise<string> {
  const isMember = member !== undefined;
  const keep = ctx.keepPd!;
  const only = [pdEndpoint(keep)];
  const exec = await executorFor(ctx, pd);
  // Left on the host until the data is aside: a run killed in between is recognised without a journal (pd-traces.ts).
  const removing = `${pd.dataDir}${MARKS.removing}${ctx.runId}`;
  if (isMember) {
    const { leader } = await ctx.pd.members(only);
    if (leader?.name === pd.name) {
      await ctx.pd.transferLeader(keep.name!, only);
      await waitFor(`PD leader to move to ${keep.name}`, async () => (await ctx.pd.members(only)).leader?.name === keep.name, { timeoutMs: 30_000 });
    }
    await exec.ensureDir(removing, { owner: 'root', mode: 0o700 });
    // etcd's strict reconfig check also refuses a removal while a recently (re)joined member is
    // less than ~5 s connected ("unhealthy cluster"): retry until it accepts.
    await waitFor(`PD to accept removing ${pd.name}`, async () => {
      try {
        // By ID: a member added for this PD that never started has no name yet.
        await deleteMemberById(ctx.pd, member!.id, only);
        return true;
      } catch (e) {
        if (/unhealthy cluster/.test((e as Error).message)) throw e;
        throw Object.assign(e as Error, { fatal: true });
      }
    }, { timeoutMs: 30_000, intervalMs: 250, fatal: (e) => Boolean((e as { fatal?: boolean }).fatal) });
    await waitFor(`PD ${pd.name} to leave the member list`, async () => !(await ctx.pd.members(only)).members.some((m) => m.memberId === member!.id), { timeoutMs: 30_000 });
  }
  // A removed member keeps running for a while; stop it before it can rejoin with stale data.
  await exec.exec(`systemctl stop ${shq(pd.unit)}`, { sudo: true, timeoutMs: 120_000 });
  const aside = `${pd.dataDir}${MARKS.removed}${ctx.runId}-${Date.now()}`;
  await exec.exec(`if [ -d ${shq(pd.dataDir!)} ] && [ -n "$(ls -A ${shq(pd.dataDir!)})" ]; then mv -T ${shq(pd.dataDir!)} ${shq(aside)}; fi`, { sudo: true });
  await exec.remove(removing);
  return `removed; data kept in ${aside}`;
}

export const scaleInStep: Step<TlsContext> = {
  id: 'scale-in',
  title: 'Scale PD in to one member',
  // Once scale-out has re-added members, deciding scale-in again would remove them again.
  resume: 'skip-if-done',
  async decide(ctx) {
    if (!ctx.keepPd) await choosePds(ctx);
    if (ctx.removedPds.length === 0) return noop('single PD');
    const { members } = await ctx.pd.members();
    const actions = [];
    for (const pd of ctx.removedPds) {
      const member = memberOf(pd, members.map((m) => ({ id: m.memberId, name: m.name, peerUrls: m.peerUrls, clientUrls: m.clientUrls })));
      const isMember = member !== undefined;
      const exec = await executorFor(ctx, pd);
      const unit = (await unitStates(exec, [pd.unit])).get(pd.unit);
      const active = unit?.activeState === 'active' || unit?.activeState === 'activating';
      const hasData = (await exec.exec(`[ -d ${shq(pd.dataDir!)} ] && [ -n "$(ls -A ${shq(pd.dataDir!)})" ]`, { sudo: true, allowFailure: true })).code === 0;
      if (!isMember && !active && !hasData) continue;
      actions.push({
        title: `remove PD ${pd.name} (${pd.host}): ${isMember ? 'delete member, ' : ''}stop ${pd.unit}${hasData ? `, move ${pd.dataDir} aside` : ''}`,
        run: () => removePd(ctx, pd, member),
      });
    }
    ctx.plannedRemovals = new Set(ctx.removedPds.filter((pd) => members.some((m) => m.name === pd.name)).map((pd) => pd.name!));
    return actions.length ? { actions } : noop(`only ${ctx.keepPd!.name} is a member`);
  },
};
