/**
 * The TiKV emulator's raft keeps raft's log guarantees when messages are lost (seen on the lab as a
 * stale read during `tls rotate --ca`, when a store's answers went missing): a follower that took an
 * entry the leader could not commit must not pass for up to date with the leader's next entry at the
 * same index. Raft names a log position by index AND term, never reuses an index within a term, and
 * lets a follower append only onto the exact position the leader's entries follow (raft-rs
 * `RaftLog::maybe_append` / `match_term`; leader's votes by `is_up_to_date`: last term, then index).
 * Three RaftStores in this process on loopback, plaintext; a store can be told to take messages and
 * not answer (a lost reply) or to refuse connections.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import type { Logger } from '../../lab/emulators/common/log';
import { RaftStore } from '../../lab/emulators/tikv/raft';
import { RaftStorage } from '../../lab/emulators/tikv/raft-storage';
import { sleep } from '../../src/util/concurrency';
import { raftServer, regionOver } from './raft-net';

jest.setTimeout(60_000);

const quiet = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} } as unknown as Logger;
// Ticks long enough that no election starts by itself during a test step (they are driven by transfers).
const TIMING = { tickMs: 1000, heartbeatTicks: 2, electionTicks: 10, minElectionTicks: 10, maxElectionTicks: 20, leaseMs: 9000 };

interface Node {
  id: number;
  store: RaftStore;
  server: net.Server;
  port: number;
  mode: 'ok' | 'no-reply' | 'refuse';
}

async function cluster(dir: string): Promise<Node[]> {
  const nodes: Node[] = [];
  for (const id of [1, 2, 3]) {
    const node = { id, mode: 'ok' } as Node;
    const { server, port } = await raftServer((msg, sock) => {
      const reply = node.store.handle(JSON.parse(msg));
      if (node.mode === 'ok') sock.end(JSON.stringify(reply) + '\n');
    }, () => node.mode !== 'refuse');
    Object.assign(node, { server, port });
    nodes.push(node);
  }
  const meta = regionOver(nodes.map((n) => n.port));
  for (const n of nodes) {
    n.store = new RaftStore({ storeId: () => n.id, storage: new RaftStorage(path.join(dir, `s${n.id}`)), timing: TIMING, log: quiet, onLeaderChange: () => undefined });
    n.store.start();
  }
  for (const n of nodes) n.store.applyRegions([meta]);
  return nodes;
}

async function leaderTerm(n: Node, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const l = n.store.leaders().find((x) => x.id === 1);
    if (l) return l.term;
    if (Date.now() > deadline) throw new Error(`store ${n.id} did not become leader`);
    await sleep(20);
  }
}

describe('the TiKV emulator raft log under lost messages', () => {
  let dir: string;
  let nodes: Node[] = [];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-raftlog-'));
  });
  afterEach(async () => {
    for (const n of nodes) {
      n.store.stop();
      await new Promise((r) => n.server.close(r));
    }
    nodes = [];
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a follower holding an uncommitted entry is brought to the committed state, and serves it once leader', async () => {
    nodes = await cluster(dir);
    const [s1, s2, s3] = nodes;
    const term = await leaderTerm(s1);
    await s1.store.put(1, 'a', '0', 1n);

    // s2 takes the next entry but its answer is lost; s3 is unreachable: the proposal fails.
    s2.mode = 'no-reply';
    s3.mode = 'refuse';
    await expect(s1.store.put(1, 'a', 'A', 2n)).rejects.toThrow(/proposal not committed: 1 of 3/);
    // s3 is back; s2's answers are still lost: the next write commits on s1 + s3.
    s3.mode = 'ok';
    await expect(s1.store.put(1, 'a', 'B', 3n)).resolves.toBe(true);
    // s2 answers again; the leader hands the region to it (PD's transfer-leader), which syncs it first.
    s2.mode = 'ok';
    await s1.store.transferLeader(1, term, 2);
    await leaderTerm(s2);
    expect(await s2.store.get(1, 'a', 10n)).toBe('B');
  });

  it('a snapshot that arrives after a newer append it predates does not take back an acknowledged write', async () => {
    // Seen on CI as a SELECT reading the value before a REPLACE acknowledged 90 ms earlier, during
    // rotate --ca's evict-leader transfers: heartbeat snapshots go over their own connections and
    // can land after the append a follower already acknowledged.
    nodes = await cluster(dir);
    const [s1, s2, s3] = nodes;
    const term = await leaderTerm(s1);
    await s1.store.put(1, 'a', '0', 1n); // every store at the state (1, term)
    const before = { t: 'snap' as const, region: 1, term, from: 1, index: 1, lastTerm: term, data: { a: { value: '0', commit_ts: '1' } } };
    s3.mode = 'refuse';
    await expect(s1.store.put(1, 'a', 'A', 2n)).resolves.toBe(true); // committed on s1 + s2
    // The snapshot of state 1, sent before that append, reaches s2 now.
    expect(s2.store.handle(before)).toMatchObject({ ok: true, index: 2, lastTerm: term });
    // s1 goes away; s2 is handed the region (as evict-leader would), s3 (state 1) votes for it.
    s1.mode = 'refuse';
    s1.store.stop();
    s3.mode = 'ok';
    s2.store.handle({ t: 'timeout_now', region: 1, term, from: 1 });
    await leaderTerm(s2);
    expect(await s2.store.get(1, 'a', 10n)).toBe('A');
  });

  it('a voter refuses a candidate whose last entry is of an older term, even with a higher index', async () => {
    nodes = await cluster(dir);
    const [s1, s2, s3] = nodes;
    const term = await leaderTerm(s1);
    await s1.store.put(1, 'k', 'v1', 1n);
    // Hand over to s3 (term + 1), which writes once: s2's last entry is now of the newer term.
    await s1.store.transferLeader(1, term, 3);
    const t3 = await leaderTerm(s3);
    s1.mode = 'refuse';
    await s3.store.put(1, 'k', 'v2', 2n);
    // s1 (older last term) asks s2 for its vote: not granted, whatever s1's index.
    const st = s2.store.handle({ t: 'vote', region: 1, term: t3 + 5, from: 1, index: 99, lastTerm: term, transfer: true });
    expect(st).toMatchObject({ granted: false });
  });
});
