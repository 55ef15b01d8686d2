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
import { keptHasLeader, recoverQuorum } from './quorum';

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

/** Asking a PD without quorum for its leader costs seconds: two voters with this one stopped have none. */
async function leaderUnlessPair(ctx: TlsContext, pd: Instance, members: EtcdMember[]): Promise<boolean> {
  return members.length === 2 && memberOf(pd, members) !== undefined ? false : keptHasLeader(ctx, ctx.keepPd!, 2);
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
    const plan = planJoin(pd, keep, pdInstances(ctx.topology), members, await leaderUnlessPair(ctx, pd, members), data);
    if (plan.kind === 'refuse') throw new StepError(plan.message, { suggestion: plan.suggestion });
    if (plan.kind === 'recover-quorum') {
      if (round > 0) throw new StepError(`PD ${keep.name} on ${keep.host} still has no quorum after --force-new-cluster`, { suggestion: `look at journalctl -u ${keep.unit} on ${keep.host}` });
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

/** Healthy, or false as soon as its process has exited (a crash loop is not worth 30 s of waiting). */
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
  }, { timeoutMs: 30_000, intervalMs: 500, fatal: (e) => Boolean((e as { fatal?: boolean }).fatal) });
}

async function addPd(ctx: TlsContext, pd: Instance): Promise<string> {
  const keep = ctx.keepPd!;
  const exec = await executorFor(ctx, pd);
  let lastErr = '';
  const notes: string[] = [];
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
      const plan = planJoin(pd, keep, pdInstances(ctx.topology), members, await leaderUnlessPair(ctx, pd, members), await readDataFacts(ctx, pd));
      if (plan.kind === 'refuse') break;
      if (plan.kind === 'recover-quorum') {
        const said = await recoverQuorum(ctx, keep, plan.blocker, pd);
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
