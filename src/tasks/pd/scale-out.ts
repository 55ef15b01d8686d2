import { StepError } from '../../errors';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { pdInstances } from '../../topology';
import type { Instance } from '../../topology/types';
import { sleep, waitFor } from '../../util/concurrency';
import { shq } from '../../util/shell';
import { executorFor, pdEndpoint, TlsContext } from '../context';
import { logTail, systemctl, unitStates } from '../remote';
import { logName } from '../restart/health';
import { deployOwner } from '../certs/stage';
import type { EtcdMember } from '../../pd/client';
import { MARKS } from './traces';
import { busyPorts, configCheckCommand, configCheckProblem, deleteMemberById, memberOf, parsePdDataFacts, PdDataFacts, pdDataFactsScript, planJoin } from './join';
import { answersHealth, blockerEvidence, keptHasQuorum, mayHaveRun, PD_ETCD_START_MS, recoverQuorum } from './quorum';

/** etcd refuses a member add until the newest member has been connected ~5 s (strict reconfig). */
const STRICT_RECONFIG_MS = 5_500;

async function memberHealthy(ctx: TlsContext, pd: Instance): Promise<boolean> {
  const h = await ctx.pd.health([pdEndpoint(ctx.keepPd!)]);
  return h.some((m) => m.name === pd.name && m.health);
}

async function readDataFacts(ctx: TlsContext, pd: Instance): Promise<PdDataFacts> {
  const exec = await executorFor(ctx, pd);
  // Root hands over to the deploy user (who owns the data dir); a failure must stop the join, not read as "empty".
  return parsePdDataFacts((await exec.exec(pdDataFactsScript(pd, ctx.user), { sudo: true })).stdout);
}

async function removeById(ctx: TlsContext, m: EtcdMember): Promise<void> {
  // Through the kept PD: the member being removed may be down.
  await deleteMemberById(ctx.pd, m.id, [pdEndpoint(ctx.keepPd!)]);
  await waitFor(`member ${m.id} to leave the member list`, async () => !(await ctx.pd.etcdMembers([pdEndpoint(ctx.keepPd!)])).some((x) => x.id === m.id), { timeoutMs: 30_000 });
}

/** Two voters, this PD one of them and stopped: no quorum, and no need to wait three election timeouts to see it. */
async function quorumUnlessPair(ctx: TlsContext, pd: Instance, members: EtcdMember[]): Promise<boolean> {
  return members.length === 2 && memberOf(pd, members) !== undefined ? false : keptHasQuorum(ctx, ctx.keepPd!);
}

/**
 * A recovery is allowed only when the member in the way never started (quorum.ts): otherwise
 * refuse, naming what shows it ran. `data` is the owner's when the owner is the joining PD.
 */
async function checkNeverStarted(ctx: TlsContext, blocker: EtcdMember, owner: Instance | undefined, data: PdDataFacts | undefined): Promise<void> {
  const keep = ctx.keepPd!;
  if (!owner) {
    throw new StepError(`PD ${keep.name} on ${keep.host} has no quorum and member ${blocker.id} (peer ${blocker.peerUrls.join(',')}) is no PD of the topology`, {
      suggestion: 'start the PD members that are down (systemctl start pd-<port>) so PD regains its quorum, then re-run',
    });
  }
  const why = mayHaveRun(await blockerEvidence(ctx, blocker, owner, data ?? (await readDataFacts(ctx, owner))));
  if (why) {
    throw new StepError(
      `PD ${keep.name} on ${keep.host} has no quorum (no linearizable read through its etcd for three election timeouts) and PD ${owner.name} on ${owner.host} may have run: ${why}. ` +
        'tiseal restarts a PD with --force-new-cluster only when the other voter never started (anything else can drop committed writes); nothing was stopped',
      { suggestion: `start PD ${owner.name} (systemctl start ${owner.unit} on ${owner.host}) or fix what stops it (journalctl -u ${owner.unit}); once PD has a leader, re-run` },
    );
  }
}

/**
 * Everything a joining PD needs before it starts, with its unit stopped: a quorum on the kept PD
 * (restored when an earlier join broke it), no member in the way, its data dir empty or a
 * half-join of this member, its ports free and its config accepted by its own binary.
 * Returns what was done, for the action's note.
 */
async function prepareJoin(ctx: TlsContext, pd: Instance): Promise<string[]> {
  const keep = ctx.keepPd!;
  const exec = await executorFor(ctx, pd);
  const done: string[] = [];
  await exec.exec(`systemctl stop ${shq(pd.unit)}`, { sudo: true, allowFailure: true, timeoutMs: 120_000 });
  for (let round = 0; ; round++) {
    const members = await ctx.pd.etcdMembers([pdEndpoint(keep)]);
    const data = await readDataFacts(ctx, pd);
    const plan = planJoin(pd, keep, pdInstances(ctx.topology), members, await quorumUnlessPair(ctx, pd, members), data);
    if (plan.kind === 'refuse') throw new StepError(plan.message, { suggestion: plan.suggestion });
    if (plan.kind === 'recover-quorum') {
      if (round > 0) throw new StepError(`PD ${keep.name} on ${keep.host} still has no quorum after --force-new-cluster`, { suggestion: `look at journalctl -u ${keep.unit} on ${keep.host}` });
      await checkNeverStarted(ctx, plan.blocker, plan.owner, plan.owner === pd ? data : undefined);
      const said = await recoverQuorum(ctx, keep, plan.blocker, plan.owner);
      ctx.notes.push(said);
      done.push('PD quorum restored first (--force-new-cluster on the kept PD)');
      continue;
    }
    for (const r of plan.remove) {
      await removeById(ctx, r.member);
      done.push(`removed member ${r.member.id} (${r.why})`);
    }
    if (plan.moveAside) {
      const aside = `${pd.dataDir}${MARKS.stale}${ctx.runId}-${Date.now()}`;
      await exec.exec(`mv -T ${shq(pd.dataDir!)} ${shq(aside)}`, { sudo: true });
      done.push(`${plan.moveAside}: moved to ${aside}`);
    }
    if (plan.resume) done.push(plan.resume);
    const busy = busyPorts(pd, plan.moveAside ? { ...data, entries: [] } : data);
    if (busy.length) {
      throw new StepError(`${pd.host}: port ${busy.join(', ')} of PD ${pd.name} is in use by another process (its unit ${pd.unit} is stopped)`, {
        suggestion: `find it with \`ss -tlnp\` on ${pd.host} and stop it, then re-run`,
      });
    }
    const check = await exec.exec(configCheckCommand(pd, ctx.user), { sudo: true, allowFailure: true, timeoutMs: 60_000 });
    const problem = configCheckProblem(check.code ?? -1, check.stdout, check.stderr);
    if (problem) {
      throw new StepError(`${pd.host}: ${pd.deployDir}/bin/pd-server --config-check refuses ${pd.deployDir}/conf/pd.toml (${problem}); PD ${pd.name} was not started`, {
        suggestion: `fix ${pd.deployDir}/conf/pd.toml on ${pd.host}, then re-run`,
      });
    }
    await exec.ensureDir(pd.dataDir!, { owner: deployOwner(ctx), mode: 0o755 });
    return done;
  }
}

/**
 * Healthy, or false as soon as its process has exited (a crash loop is not worth waiting for).
 * While it runs, as long as PD itself waits for its embedded etcd to start and join.
 */
async function waitJoined(ctx: TlsContext, pd: Instance): Promise<void> {
  const exec = await executorFor(ctx, pd);
  const before = (await unitStates(exec, [pd.unit])).get(pd.unit)?.nRestarts ?? 0;
  await waitFor(`PD ${pd.name} to join and be healthy`, async () => {
    if (await memberHealthy(ctx, pd).catch(() => false)) return true;
    const u = (await unitStates(exec, [pd.unit])).get(pd.unit);
    if (u && (u.nRestarts > before || u.activeState === 'failed' || u.activeState === 'inactive' || u.subState === 'auto-restart')) {
      throw Object.assign(new Error(`${pd.unit} exited (${u.activeState}/${u.subState})`), { fatal: true });
    }
    return false;
  }, { timeoutMs: PD_ETCD_START_MS, intervalMs: 500, fatal: (e) => Boolean((e as { fatal?: boolean }).fatal) });
}

/** A member by name that answers on its client port is running: it is waited for, never stopped. */
async function alreadyRunning(ctx: TlsContext, pd: Instance): Promise<boolean> {
  const members = await ctx.pd.etcdMembers([pdEndpoint(ctx.keepPd!)]);
  return members.some((m) => m.name === pd.name) && (await answersHealth(ctx, pd));
}

async function addPd(ctx: TlsContext, pd: Instance): Promise<string> {
  const keep = ctx.keepPd!;
  const exec = await executorFor(ctx, pd);
  let lastErr = '';
  const notes: string[] = [];
  if (await alreadyRunning(ctx, pd)) {
    await waitJoined(ctx, pd);
    return 'already a running member: waited until healthy, not restarted';
  }
  for (let attempt = 1, backoff = 2000; attempt <= 3; attempt++, backoff *= 2) {
    notes.push(...(await prepareJoin(ctx, pd)));
    await systemctl(exec, 'start', pd.unit);
    try {
      await waitJoined(ctx, pd);
      return [attempt > 1 ? `joined after ${attempt} attempts` : 'joined', ...notes].join('; ');
    } catch (e) {
      lastErr = (e as Error).message;
      const tail = await logTail(exec, [`${pd.logDir}/${logName(pd)}`, `${pd.logDir}/pd_stderr.log`], 5).catch(() => '');
      lastErr += tail ? `\n${tail}` : '';
      // Stopped, its data kept: a half-join (its `join` file) is resumed by the next attempt.
      await exec.exec(`systemctl stop ${shq(pd.unit)}`, { sudo: true, allowFailure: true, timeoutMs: 120_000 });
      const members = await ctx.pd.etcdMembers([pdEndpoint(keep)]);
      const data = await readDataFacts(ctx, pd);
      const plan = planJoin(pd, keep, pdInstances(ctx.topology), members, await quorumUnlessPair(ctx, pd, members), data);
      if (plan.kind === 'refuse') break;
      if (plan.kind === 'recover-quorum') {
        await checkNeverStarted(ctx, plan.blocker, plan.owner ?? pd, plan.owner === undefined || plan.owner === pd ? data : undefined);
        const said = await recoverQuorum(ctx, keep, plan.blocker, plan.owner ?? pd);
        throw new StepError(`${pd.host} ${pd.unit}: PD ${pd.name} failed to start after it was added as a member: ${lastErr}\n${said}`, {
          suggestion: `fix what stops PD on ${pd.host} (journalctl -u ${pd.unit}, ${pd.logDir}/${logName(pd)}), then re-run the same command to add it again; \`tiseal tls disable\` rolls back`,
        });
      }
      await sleep(backoff);
    }
  }
  throw new StepError(`${pd.host} ${pd.unit}: PD ${pd.name} could not join: ${lastErr}`, {
    suggestion: `look at journalctl -u ${pd.unit} on ${pd.host}; re-run to retry, or \`tiseal tls disable\` to roll back`,
  });
}

export const scaleOutStep: Step<TlsContext> = {
  id: 'scale-out',
  title: 'Scale PD back out, one member at a time',
  async decide(ctx) {
    if (ctx.removedPds.length === 0) return noop('single PD');
    const { members } = await ctx.pd.members();
    const healthy = new Set((await ctx.pd.health()).filter((h) => h.health).map((h) => h.name));
    const leaving = ctx.plannedRemovals ?? new Set<string>();
    const todo = ctx.removedPds.filter((p) => leaving.has(p.name!) || !members.some((m) => m.name === p.name) || !healthy.has(p.name!));
    if (todo.length === 0) return noop('every PD of the topology is a healthy member');
    return {
      actions: todo.map((pd, i) => ({
        title: `re-add PD ${pd.name} on ${pd.host} (--join; checked first: quorum, members in the way, data dir, ports, --config-check)`,
        run: async () => {
          const note = await addPd(ctx, pd);
          if (i < todo.length - 1) await sleep(STRICT_RECONFIG_MS);
          return note;
        },
      })),
    };
  },
  async verify(ctx) {
    const scheme = ctx.want === 'on' ? 'https' : 'http';
    const want = pdInstances(ctx.topology).map((p) => p.name).sort();
    const { members } = await ctx.pd.members();
    const got = members.map((m) => m.name).sort();
    const bad = members.filter((m) => !m.peerUrls.every((u) => u.startsWith(`${scheme}://`)) || !m.clientUrls.every((u) => u.startsWith(`${scheme}://`)));
    if (JSON.stringify(want) !== JSON.stringify(got) || bad.length > 0) {
      throw new StepError(`PD members are ${got.join(', ')} (want ${want.join(', ')})${bad.length ? `; not ${scheme}: ${bad.map((m) => m.name).join(', ')}` : ''}`, {
        suggestion: 're-run the same command to resume, or `tiseal tls disable` to roll back',
      });
    }
  },
};
