import { StepError } from '../errors';
import type { Step } from '../engine/step';
import { noop } from '../engine/step';
import { pdInstances } from '../topology';
import type { Instance } from '../topology/types';
import { sleep, waitFor } from '../util/concurrency';
import { shq } from '../util/shell';
import { executorFor, pdEndpoint, TlsContext } from './context';
import { logTail, systemctl } from './remote';
import { logName } from './health';
import { deployOwner } from './stage';

/** etcd refuses a member add until the newest member has been connected ~5 s (strict reconfig). */
const STRICT_RECONFIG_MS = 5_500;

async function memberHealthy(ctx: TlsContext, pd: Instance): Promise<boolean> {
  const h = await ctx.pd.health([pdEndpoint(ctx.keepPd!)]);
  return h.some((m) => m.name === pd.name && m.health);
}

async function addPd(ctx: TlsContext, pd: Instance): Promise<string> {
  const exec = await executorFor(ctx, pd);
  const { members } = await ctx.pd.members([pdEndpoint(ctx.keepPd!)]);
  const hasData = (await exec.exec(`[ -n "$(ls -A ${shq(pd.dataDir!)} 2>/dev/null)" ]`, { sudo: true, allowFailure: true })).code === 0;
  if (members.some((m) => m.name === pd.name) && !hasData) {
    // A join that added the member but never started it: remove it and join again.
    await ctx.pd.deleteMember(pd.name!, [pdEndpoint(ctx.keepPd!)]);
  }
  if (!members.some((m) => m.name === pd.name) && hasData) {
    // Stale data from an earlier membership would make PD refuse to join; keep it, out of the way.
    await exec.exec(`mv ${shq(pd.dataDir!)} ${shq(`${pd.dataDir}.tiseal-stale-${ctx.runId}-${Date.now()}`)}`, { sudo: true });
  }
  await exec.ensureDir(pd.dataDir!, { owner: deployOwner(ctx), mode: 0o755 });
  let lastErr = '';
  for (let attempt = 1, backoff = 2000; attempt <= 6; attempt++, backoff = Math.min(backoff * 2, 15_000)) {
    await systemctl(exec, 'restart', pd.unit);
    try {
      await waitFor(`PD ${pd.name} to join and be healthy`, () => memberHealthy(ctx, pd), { timeoutMs: 30_000, intervalMs: 500 });
      return attempt > 1 ? `joined after ${attempt} attempts` : 'joined';
    } catch (e) {
      lastErr = (e as Error).message;
      const tail = await logTail(exec, [`${pd.logDir}/${logName(pd)}`, `${pd.logDir}/pd_stderr.log`], 5).catch(() => '');
      lastErr += tail ? `\n${tail}` : '';
      await exec.exec(`systemctl stop ${shq(pd.unit)}`, { sudo: true, allowFailure: true });
      const still = (await ctx.pd.members([pdEndpoint(ctx.keepPd!)])).members.some((m) => m.name === pd.name);
      if (still) await ctx.pd.deleteMember(pd.name!, [pdEndpoint(ctx.keepPd!)]);
      await exec.remove(pd.dataDir!);
      await exec.ensureDir(pd.dataDir!, { owner: deployOwner(ctx), mode: 0o755 });
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
        title: `re-add PD ${pd.name} on ${pd.host} (--join, empty data dir)`,
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
