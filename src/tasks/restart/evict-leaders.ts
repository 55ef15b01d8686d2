import * as path from 'path';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { StepError } from '../../errors';
import { EVICT_LEADER, PdSchedulers } from '../../pd/schedulers';
import { UnsafeRemotePathError } from '../../ssh/errors';
import type { Executor } from '../../ssh/executor';
import type { Instance } from '../../topology/types';
import { storeAddress } from '../../topology/query';
import { mapLimit, sleep, readConcurrency } from '../../util/concurrency';
import { runStats } from '../../util/run-stats';
import { executorFor, TlsContext } from '../context';
import { unitStates } from '../remote';

/**
 * A store restart done as TiUP's rolling restart does it (pingcap/tiup pkg/cluster/spec/tikv.go
 * PreRestart/PostRestart, pkg/cluster/api/pdapi.go EvictStoreLeader/RemoveStoreEvict): PD's
 * evict-leader scheduler moves the store's region leaders to other stores (leader transfers, no
 * election), tiseal waits until PD counts 0 leaders on it (bounded: `--transfer-timeout`, TiUP's
 * default 600 s; a timeout is said and the restart goes on, as TiUP does), restarts it, waits until
 * it is Up, then removes the scheduler, also when the restart failed. One store at a time.
 *
 * Crash safety without a journal: before adding the scheduler tiseal leaves a marker file on the
 * store's host (MARKER in its deploy dir, root's, naming the store ID and the run). The scheduler
 * lives in PD and the marker next to the store, so any later run, from any machine, knows which
 * scheduler is tiseal's: clearEvictionsStep removes those, and never one without a marker (the
 * operator's). Written and read as root with the executor's primitives (never through a symlink);
 * a marker not owned by root is not tiseal's and is ignored, so the deploy user cannot make root
 * remove a scheduler.
 */
export const MARKER = 'tiseal-evict-leader';
export const TRANSFER_TIMEOUT_S = 600;
const POLL_MS = 1000;
/** PD store states whose leaders cannot be transferred (a dead store's are re-elected by its peers anyway). */
const GONE = new Set(['Disconnected', 'Down', 'Tombstone', 'Removed']);

export const markerPath = (inst: Pick<Instance, 'deployDir'>) => path.posix.join(inst.deployDir, MARKER);
const isStore = (i: Instance) => i.role === 'tikv' || i.role === 'tiflash';

export interface EvictMarker {
  path: string;
  storeId: string;
  run?: string;
}

export function markerText(storeId: string, runId: string, inst: Instance): string {
  return [
    `# tiseal added PD's ${EVICT_LEADER} for store ${storeId} (${inst.unit}) before restarting it; the next tiseal run removes it, then this file.`,
    `store_id=${storeId}`,
    `run=${runId}`,
    '',
  ].join('\n');
}

/** tiseal's marker on the store's host, or undefined (none, not root's, not a regular file, or a symlink). */
export async function readMarker(exec: Executor, inst: Instance): Promise<EvictMarker | undefined> {
  const p = markerPath(inst);
  try {
    const st = await exec.stat(p, { sudo: true });
    if (!st.exists || !st.isFile || st.uid !== 0) return undefined;
    const text = (await exec.get(p, { sudo: true })).toString('utf8');
    const storeId = /^store_id=(\d+)$/m.exec(text)?.[1];
    return storeId ? { path: p, storeId, run: /^run=(\S+)$/m.exec(text)?.[1] } : undefined;
  } catch (e) {
    if (e instanceof UnsafeRemotePathError) return undefined; // a planted symlink is nobody's marker
    throw e;
  }
}

async function writeMarker(exec: Executor, inst: Instance, storeId: string, runId: string): Promise<void> {
  await exec.put(markerText(storeId, runId, inst), markerPath(inst), { mode: 0o600, owner: 'root:root', sudo: true });
}

/** Remove tiseal's scheduler for the marker's store, then the marker (the other order could lose track of it). */
async function clearMarker(ctx: TlsContext, exec: Executor, m: EvictMarker): Promise<'removed' | 'not-found'> {
  const r = await new PdSchedulers(ctx.pd).removeEvictLeader(m.storeId);
  await exec.remove(m.path);
  return r;
}

/** One store restart at a time per run, whichever step (or parallel action) asks. */
const queues = new WeakMap<object, Promise<unknown>>();
function oneStoreAtATime<T>(ctx: TlsContext, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(ctx) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(fn);
  queues.set(ctx, next.catch(() => undefined));
  return next;
}

type Plan = { evict: false; why: string } | { evict: true; storeId: string; leaders: number; add: boolean; kept?: string };

async function planEviction(ctx: TlsContext, inst: Instance, exec: Executor, sched: PdSchedulers): Promise<Plan> {
  if (ctx.topology.instances.filter((i) => i.role === 'tikv').length <= 1) return { evict: false, why: 'the only TiKV: no other store can take its leaders (TiUP skips it too)' };
  const unit = (await unitStates(exec, [inst.unit])).get(inst.unit);
  // A store whose process is gone transfers nothing: its peers elect new leaders anyway.
  if (unit?.activeState !== 'active') return { evict: false, why: `${inst.unit} is ${unit?.activeState ?? 'missing'}` };
  const addr = storeAddress(inst);
  const store = (await ctx.pd.stores()).find((s) => s.address === addr);
  if (!store) return { evict: false, why: `PD has no store ${addr}` };
  if (GONE.has(store.stateName)) return { evict: false, why: `store ${store.id} is ${store.stateName}: its peers elect new leaders anyway` };
  let marker = await readMarker(exec, inst);
  if (marker && marker.storeId !== store.id) {
    // The store was re-created since a killed run: its old scheduler is tiseal's to remove.
    await clearMarker(ctx, exec, marker);
    marker = undefined;
  }
  const { leaderCount } = await sched.store(store.id);
  if (leaderCount === 0 && !marker) return { evict: false, why: `store ${store.id} leads no region` };
  if (marker) return { evict: true, storeId: store.id, leaders: leaderCount, add: true };
  const evicted = await sched.evictedStores();
  if (evicted === undefined) return { evict: false, why: `PD lists an ${EVICT_LEADER} whose stores it does not tell: it is left alone` };
  if (evicted.has(store.id)) return { evict: true, storeId: store.id, leaders: leaderCount, add: false, kept: `an ${EVICT_LEADER} tiseal did not add already holds store ${store.id}: kept` };
  return { evict: true, storeId: store.id, leaders: leaderCount, add: true };
}

/** Poll PD until the store leads no region or the time is up; returns what is left. */
async function waitLeadersGone(sched: PdSchedulers, storeId: string, timeoutMs: number): Promise<{ left: number; ms: number }> {
  const start = Date.now();
  for (;;) {
    const { leaderCount } = await sched.store(storeId);
    const ms = Date.now() - start;
    if (leaderCount === 0 || ms >= timeoutMs) return { left: leaderCount, ms };
    await sleep(Math.min(POLL_MS, timeoutMs - ms));
  }
}

const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * Restart one TiKV/TiFlash instance the TiUP way (see the top of this file). `restart` restarts
 * the unit and waits until the store is Up. Resolves to a note for the action's line.
 */
export function restartStoreEvictingLeaders(ctx: TlsContext, inst: Instance, restart: () => Promise<void>): Promise<string> {
  if (!isStore(inst)) return restart().then(() => 'restarted');
  return oneStoreAtATime(ctx, async () => {
    const exec = await executorFor(ctx, inst);
    const sched = new PdSchedulers(ctx.pd);
    const plan = await planEviction(ctx, inst, exec, sched);
    if (!plan.evict) {
      runStats.eviction({ host: inst.host, unit: inst.unit, skipped: plan.why });
      await restart();
      return `restarted without evicting leaders (${plan.why})`;
    }
    const timeoutMs = (ctx.flags.transferTimeoutSec ?? TRANSFER_TIMEOUT_S) * 1000;
    const record = runStats.eviction({ host: inst.host, unit: inst.unit, storeId: plan.storeId, leadersBefore: plan.leaders, addedByTiseal: plan.add });
    const notes: string[] = plan.kept ? [plan.kept] : [];
    let marked = false;
    let failure: unknown;
    try {
      if (plan.add) {
        // Marker first: a run killed right after the POST still leaves the scheduler recognisable.
        await writeMarker(exec, inst, plan.storeId, ctx.runId);
        marked = true;
        await sched.addEvictLeader(plan.storeId);
      }
      const { left, ms } = await waitLeadersGone(sched, plan.storeId, timeoutMs);
      Object.assign(record, { leadersAtRestart: left, evictMs: ms, timedOut: left > 0 });
      if (left > 0) {
        const msg = `${inst.unit} on ${inst.host}: store ${plan.storeId} still led ${left} of ${plan.leaders} region(s) after ${secs(ms)} under ${EVICT_LEADER} (--transfer-timeout ${timeoutMs / 1000}); restarted anyway, as TiUP does: those regions wait for an election`;
        ctx.notes.push(msg);
        notes.push(`leader eviction timed out with ${left} leader(s) left`);
      } else {
        notes.push(`${plan.leaders} leader(s) moved off store ${plan.storeId} in ${secs(ms)}`);
      }
      await restart();
      notes.push('restarted, Up');
    } catch (e) {
      failure = e;
    }
    if (marked) {
      try {
        await clearMarker(ctx, exec, { path: markerPath(inst), storeId: plan.storeId });
        record.removedAt = Date.now();
        notes.push(`${EVICT_LEADER} removed`);
      } catch (e) {
        const why = `could not remove ${EVICT_LEADER}-${plan.storeId} (store ${storeAddress(inst)}): ${(e as Error).message}`;
        const suggestion = `re-run the same command: it removes the scheduler named by ${inst.host}:${markerPath(inst)} first (or: pd-ctl scheduler remove ${EVICT_LEADER}-${plan.storeId})`;
        if (failure === undefined) failure = new StepError(why, { suggestion });
        else ctx.notes.push(`${why}; ${suggestion}`);
      }
    }
    if (failure !== undefined) throw failure;
    return notes.join('; ');
  });
}

/**
 * Schedulers a killed run left: only those a root-owned marker on the store's host names (see the
 * top of this file), so an operator's evict-leader scheduler is never touched.
 */
export const clearEvictionsStep: Step<TlsContext> = {
  id: 'clear-evictions',
  title: `Remove the ${EVICT_LEADER}s a killed tiseal run left (named by its marker on the store's host)`,
  async decide(ctx) {
    const found = await mapLimit(ctx.topology.instances.filter(isStore), readConcurrency(ctx.opts), async (inst) => {
      const exec = await executorFor(ctx, inst);
      const marker = await readMarker(exec, inst);
      return marker && { inst, exec, marker };
    });
    const left = found.filter((f): f is NonNullable<typeof f> => Boolean(f));
    if (left.length === 0) return noop(`no ${MARKER} marker on any TiKV/TiFlash host`);
    return {
      concurrency: 1,
      actions: left.map(({ inst, exec, marker }) => ({
        title: `remove ${EVICT_LEADER}-${marker.storeId} (added by tiseal run ${marker.run ?? '?'} before restarting ${inst.unit} on ${inst.host}), then ${marker.path}`,
        run: async () => ((await clearMarker(ctx, exec, marker)) === 'removed' ? 'removed' : 'PD no longer had it; marker removed'),
      })),
    };
  },
};
