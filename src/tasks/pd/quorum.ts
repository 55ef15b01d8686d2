import { StepError } from '../../errors';
import type { EtcdMember } from '../../pd/client';
import type { Instance } from '../../topology/types';
import { sleep, waitFor } from '../../util/concurrency';
import { shq } from '../../util/shell';
import { executorFor, pdEndpoint, TlsContext } from '../context';
import { readRemoteText, unitStates } from '../remote';
import { deployOwner } from '../certs/stage';
import { endForcedRun, forceScript, forceUnit, withoutForceNewCluster } from './force-once';
import type { PdDataFacts } from './join';

/**
 * The way back when a join fails after its member was added to a one-member PD: etcd then has two
 * voters and one of them never runs, so there is no quorum — no leader, and not even the removal of
 * the new member can commit. PD's documented recovery from a surviving member (pingcap/docs
 * pd-recover.md, "Recover a PD cluster using a surviving PD node") starts it once with
 * `--force-new-cluster` (etcd rewrites the membership to this member alone and keeps what it knows
 * to be committed), runs `pd-recover --from-old-member` so that IDs and TSO never go back, and
 * restarts it.
 *
 * `--force-new-cluster` drops whatever the survivor does not know to be committed, so it is safe
 * only when the other voter never ran: then nothing was committed without the survivor, and the
 * survivor has all of it. tiseal forces only on that proof (neverStarted) and never because PD's
 * API was slow to answer: quorum is asked of etcd itself, over several election timeouts.
 */

/** PD's embedded etcd elects within this (tikv/pd server/config/config.go defaultElectionInterval, 3 s; 500 ms ticks). */
export const PD_ELECTION_MS = 3000;
/** How long PD waits for its embedded etcd to start and join (tikv/pd server/server.go EtcdStartTimeout, 5 min). */
export const PD_ETCD_START_MS = 5 * 60_000;
/** The election timeout the quorum probe waits on; unit tests shorten it (they test the decision, not PD's timing). */
export const quorumTimings = { electionMs: PD_ELECTION_MS };
/** What `pd-recover --from-old-member` adds to alloc_id (tikv/pd tools/pd-recover/main.go allocIDSafeGuard). */
export const ALLOC_ID_SAFE_GUARD = 100_000_000n;

/** The kept PD's run script with `--force-new-cluster` on the pd-server command line. */
export function withForceNewCluster(script: string): string | undefined {
  if (script.includes('--force-new-cluster')) return script;
  const lines = script.split('\n');
  const i = lines.findIndex((l) => /^\s*bin\/pd-server \\$/.test(l));
  if (i < 0) return undefined;
  const indent = /^\s*/.exec(lines[i])![0];
  lines.splice(i + 1, 0, `${indent}--force-new-cluster \\`);
  return lines.join('\n');
}

/**
 * Has the kept PD's etcd a quorum? A linearizable read through it answers only after a ReadIndex
 * confirmed by a majority, so one answer proves it. No answer within `windowMs` (three election
 * timeouts: a leader change or a slow peer takes about one) means no quorum. PD's HTTP API is not
 * asked: it can fail while etcd is fine (an etcd call of PD's timing out, a busy leader).
 */
export async function keptHasQuorum(ctx: TlsContext, keep: Instance, windowMs = 3 * quorumTimings.electionMs): Promise<boolean> {
  const until = Date.now() + windowMs;
  for (;;) {
    const ok = await ctx.pd.etcdGet('/pd/cluster_id', { only: [pdEndpoint(keep)], timeoutMs: quorumTimings.electionMs }).then(() => true, () => false);
    if (ok) return true;
    if (Date.now() >= until) return false;
    await sleep(quorumTimings.electionMs / 6);
  }
}

/** Does anything answer on this PD's client port? Any HTTP status counts: a process is serving there. */
export async function answersHealth(ctx: TlsContext, pd: Instance): Promise<boolean> {
  return ctx.pd.call('GET', '/health', undefined, [pdEndpoint(pd)]).then(() => true, () => false);
}

/** What the hosts say about the member that blocks the quorum. */
export interface BlockerEvidence {
  /** etcd publishes a member's name once its server has started (etcdserver publish). */
  named: boolean;
  /** Its data dir holds a WAL segment (PdDataFacts.wal). */
  wal: boolean;
  /** Something answers on its client port. */
  answers: boolean;
  /** Its unit is active (or activating, or restarting) now. */
  unitActive: boolean;
}

/** Why the blocker may have run (and so may hold committed writes the kept PD lacks), or undefined when it never started. */
export function mayHaveRun(e: BlockerEvidence): string | undefined {
  const why = [
    e.named && 'etcd lists it with its name (it started)',
    e.wal && 'its data dir holds an etcd WAL (it persisted raft entries)',
    e.answers && 'it answers on its client port',
    e.unitActive && 'its unit is active',
  ].filter(Boolean);
  return why.length ? why.join('; ') : undefined;
}

export async function blockerEvidence(ctx: TlsContext, blocker: EtcdMember, owner: Instance, data: PdDataFacts): Promise<BlockerEvidence> {
  const exec = await executorFor(ctx, owner);
  const u = (await unitStates(exec, [owner.unit])).get(owner.unit);
  return {
    named: blocker.name !== '',
    wal: data.wal,
    answers: await answersHealth(ctx, owner),
    unitActive: u !== undefined && ['active', 'activating', 'reloading'].includes(u.activeState) && u.subState !== 'auto-restart',
  };
}

const u64 = (b: Buffer | undefined): bigint | undefined => (b && b.length === 8 ? b.readBigUInt64BE(0) : undefined);
const u64Bytes = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};

/** PD's ID allocator and saved TSO window as one member's local store has them (no quorum needed). */
async function localIds(ctx: TlsContext, only: string[]): Promise<{ cid?: bigint; alloc?: bigint; tso?: bigint }> {
  const get = async (key: string) => (await ctx.pd.etcdGet(key, { only, serializable: true }))?.value;
  const cid = u64(await get('/pd/cluster_id'));
  if (cid === undefined) return {};
  return { cid, alloc: u64(await get(`/pd/${cid}/alloc_id`)), tso: u64(await get(`/pd/${cid}/timestamp`)) };
}

/**
 * `pd-recover --from-old-member` on the forced PD: alloc_id raised by its safe guard, only on a
 * bootstrapped cluster (compare on `/pd/<cid>/raft`), and here also only if PD did not move it
 * meanwhile (compare on the value; re-read and retried). Its other step, deleting every store's
 * record so that TiKV re-registers, is for a survivor that may lag behind; this one cannot (see
 * top), so stores keep running and their records stay. Returns the values, or why nothing changed.
 */
async function raiseAllocId(ctx: TlsContext, only: string[], cid: bigint): Promise<{ from: bigint; to: bigint } | string> {
  const key = `/pd/${cid}/alloc_id`;
  for (let i = 0; i < 5; i++) {
    const was = (await ctx.pd.etcdGet(key, { only }))?.value;
    const from = u64(was) ?? 0n;
    const to = from + ALLOC_ID_SAFE_GUARD;
    const guard = { key: `/pd/${cid}/raft`, exists: true };
    if (await ctx.pd.etcdPutIf(key, u64Bytes(to), guard, was, only)) return { from, to };
    if (!(await ctx.pd.etcdGet(guard.key, { only }))) return 'the cluster was never bootstrapped (no /pd/<cluster id>/raft): no ID was allocated that could repeat';
  }
  throw new StepError(`alloc_id of PD cluster ${cid} kept changing while tiseal raised it (pd-recover --from-old-member)`, {
    suggestion: 'run pd-recover --from-old-member against the kept PD by hand, restart it, then re-run',
  });
}

/**
 * Stop the member that never ran (so it cannot come back into the old membership), start the kept
 * PD once with --force-new-cluster as a transient unit (force-once.ts: the flag is never written to
 * its run script), raise alloc_id as pd-recover --from-old-member does, start its normal unit and
 * check that the saved TSO window did not go back. The caller has established that the blocker
 * never started. Returns the plain-words account for the output.
 */
export async function recoverQuorum(ctx: TlsContext, keep: Instance, blocker: EtcdMember, failed: Instance | undefined): Promise<string> {
  const only = [pdEndpoint(keep)];
  if (failed) await (await executorFor(ctx, failed)).exec(`systemctl stop ${shq(failed.unit)}`, { sudo: true, allowFailure: true, timeoutMs: 120_000 });
  const exec = await executorFor(ctx, keep);
  const original = await readRemoteText(exec, keep.runScript);
  const forced = original === undefined ? undefined : withForceNewCluster(withoutForceNewCluster(original));
  if (original === undefined || forced === undefined) {
    throw new StepError(`${keep.host}: ${keep.runScript} of the kept PD ${keep.name} is ${original === undefined ? 'missing' : 'not a run script tiseal knows (no "bin/pd-server \\" line)'}: cannot start it with --force-new-cluster to restore PD's quorum`, {
      suggestion: `restore PD by hand: start pd-server on ${keep.host} once with --force-new-cluster (PD Recover guide), then remove it again and restart; then re-run`,
    });
  }
  const before = await localIds(ctx, only);
  const [user, group] = deployOwner(ctx).split(':');
  const alone = async () => {
    const ms = await ctx.pd.etcdMembers(only);
    return ms.length === 1 && ms[0].name === keep.name && (await keptHasQuorum(ctx, keep, 0));
  };
  let raised: Awaited<ReturnType<typeof raiseAllocId>> = 'cluster ID unknown';
  await exec.exec(`systemctl stop ${shq(keep.unit)}`, { sudo: true, timeoutMs: 120_000 });
  try {
    await exec.ensureDir('/run/tiseal', { owner: 'root:root', mode: 0o755 });
    await exec.put(forced, forceScript(keep), { mode: 0o644, owner: 'root:root', atomic: true, sudo: true });
    // The unit's own limits matter to PD (TiUP's unit: LimitNOFILE=1000000, LimitSTACK=10485760).
    await exec.exec(
      `systemd-run --unit=${shq(forceUnit(keep))} --uid=${shq(user)} --gid=${shq(group)} --collect -p LimitNOFILE=1000000 -p LimitSTACK=10485760 /bin/bash ${shq(forceScript(keep))}`,
      { sudo: true, timeoutMs: 60_000 },
    );
    await waitFor(`PD ${keep.name} to come back as the only member, with a quorum`, alone, { timeoutMs: 90_000, intervalMs: 1000 });
    if (before.cid !== undefined) raised = await raiseAllocId(ctx, only, before.cid);
  } finally {
    // Never left running: its next start would drop every other member again. The normal unit
    // then loads the raised alloc_id and its TSO window (pd-recover's last step, a restart).
    await endForcedRun(exec, keep);
  }
  await waitFor(`PD ${keep.name} to have a quorum after its normal start`, alone, { timeoutMs: 90_000, intervalMs: 1000 });
  const after = await localIds(ctx, only);
  if (before.tso !== undefined && (after.tso === undefined || after.tso < before.tso)) {
    throw new StepError(`PD ${keep.name} on ${keep.host}: its saved TSO window went back after --force-new-cluster (${before.tso} → ${after.tso ?? 'none'})`, {
      suggestion: 'stop TiDB and do not write until PD is checked: run pd-recover --from-old-member by hand (PD Recover guide), then restart PD',
    });
  }
  const who = failed ? `PD ${failed.name} on ${failed.host}` : `member ${blocker.id} (peer ${blocker.peerUrls.join(',')})`;
  const ids = typeof raised === 'string' ? `alloc_id left as it is (${raised})` : `raised alloc_id from ${raised.from} to ${raised.to} as \`pd-recover --from-old-member\` does, so no ID is handed out twice`;
  return (
    `PD lost its quorum: ${who} was added as a member (2 voters) but never started (no name in etcd, no WAL in its data dir, not running). ` +
    `tiseal restarted the kept PD ${keep.name} on ${keep.host} once with --force-new-cluster (PD's documented recovery of a surviving member; a transient unit, never in its run script), ${ids}, ` +
    `then started it normally: PD is one healthy member with all its data (nothing could commit without ${keep.name}), its TSO continues from its saved window ` +
    `(${before.tso ?? '?'} → ${after.tso ?? '?'}), TiDB, TiKV and TiFlash kept running, and ${who} is no longer a member`
  );
}
