import * as net from 'net';
import * as tls from 'tls';
import type { Logger } from '../common/log';
import { clientTlsOptions, splitHostPort, TlsPaths } from '../common/tls';
import type { RaftTiming } from './raft-config';
import { KvEntry, PeerState, RaftStorage, RegionMeta } from './raft-storage';

/**
 * The regions a TiKV store holds, each a small raft group over the stores (after raft-rs and
 * TiKV's raftstore; test equipment, not a raft implementation to trust with data):
 * - a follower that hears nothing from a leader for its randomized election timeout
 *   ([min, max) ticks, raft-config.ts) campaigns: term + 1, votes asked from the other peers over
 *   TiKV↔TiKV TLS (this store's own certificate as client; the peer's gRPC port checks the chain and
 *   its cert-allowed-cn); a majority makes it leader. A voter grants only a candidate whose applied
 *   index is not behind its own, and — check-quorum / leader lease, as TiKV runs raft — refuses
 *   while it heard from a live leader within the minimum election timeout;
 * - the leader heartbeats every heartbeat-ticks; a follower behind gets a snapshot of the region;
 *   a leader that has not heard from a majority for an election timeout steps down (check_quorum);
 * - a write (kv_put) needs the leader and a majority of the region's peers to have it durable;
 *   every state is named by (index, term of its last entry), as raft's logs are: a follower takes
 *   entries only onto the exact state they follow, else it gets a snapshot, and a vote goes only to
 *   a candidate whose (last term, index) is not behind the voter's (raft's up-to-date rule). A
 *   proposal the leader could not commit stays in its log (never a second entry at that index in
 *   the term) and goes out again, before the next one; its client got an error, like an
 *   undetermined write in TiKV;
 *   a follower never goes back within the leader's term: an older snapshot or entries it already
 *   holds (messages overtake each other: each has its own connection) leave it as it is;
 *   a read (kv_get) needs the leader and its lease (a majority answered messages sent within the
 *   lease, and the leader has committed in its term) or a fresh heartbeat round (ReadIndex);
 * - transfer-leader (an operator from PD): the target is brought up to date, then sent TimeoutNow
 *   and campaigns at once (no election timeout, no outage); while transferring the old leader
 *   answers NotLeader;
 * - a restarted store loads its peers from disk as followers.
 * Wire messages are one JSON line on the store's server port: `raft {…}` → `{…}`.
 */
export const MSG_TIMEOUT_MS = 1000;

type Role = 'follower' | 'candidate' | 'leader';

interface Entry {
  k: string;
  v: string;
  ts: string;
  index: number;
  term: number;
}

interface Msg {
  t: 'vote' | 'hb' | 'append' | 'snap' | 'timeout_now';
  region: number;
  term: number;
  from: number;
  /** The sender's state: applied index and the term of its last entry (for append: the state the entries follow). */
  index?: number;
  lastTerm?: number;
  transfer?: boolean;
  meta?: RegionMeta;
  entries?: Entry[];
  data?: Record<string, KvEntry>;
}

interface Reply {
  ok?: boolean;
  granted?: boolean;
  term: number;
  index?: number;
  lastTerm?: number;
  snapshot?: boolean;
}

/**
 * How long older versions stay readable, in TSO physical time (ts >> 18 is milliseconds). TiKV keeps
 * them until GC (tikv_gc_life_time, 10 min); a minute covers any read TiDB still retries (its
 * backoff budget is 20 s) and keeps the region files small.
 */
const VERSION_LIFE_MS = 60_000n;

/** The key's entry (own properties only: keys are user data, "__proto__" included). */
const entryOf = (data: Record<string, KvEntry>, k: string): KvEntry | undefined => (Object.prototype.hasOwnProperty.call(data, k) ? data[k] : undefined);

/** The data after a write: the previous versions stay readable at older timestamps (TiKV is MVCC). */
function written(data: Record<string, KvEntry>, k: string, value: string, ts: string): Record<string, KvEntry> {
  const prev = entryOf(data, k);
  const horizon = (BigInt(ts) >> 18n) - VERSION_LIFE_MS;
  const older = prev ? [{ value: prev.value, commit_ts: prev.commit_ts }, ...(prev.older ?? [])].filter((v) => BigInt(v.commit_ts) >> 18n >= horizon) : [];
  return { ...data, [k]: { value, commit_ts: ts, older } };
}

/**
 * MVCC read at a start ts (tikv src/storage/mvcc/reader/point_getter.rs): the newest version
 * committed at or before it; none when every kept version is newer.
 */
function readAt(e: KvEntry | undefined, ts: bigint): string | undefined {
  if (!e) return undefined;
  // Versions are kept in apply order, which need not be commit_ts order: pick the newest by ts.
  let best: { ts: bigint; value: string } | undefined;
  for (const v of [e, ...(e.older ?? [])]) {
    const c = BigInt(v.commit_ts);
    if (c <= ts && (!best || c > best.ts)) best = { ts: c, value: v.value };
  }
  return best?.value;
}

/** Term of the last entry of a state (files written before terms were kept: 0). */
const lastTermOf = (st: PeerState): number => st.lastTerm ?? 0;

class Peer {
  role: Role = 'follower';
  leader = 0;
  /** Last time a valid leader (or the majority, for a leader) was heard from. */
  lastContact = 0;
  deadline = 0;
  lastHeartbeat = 0;
  acks = new Map<number, number>();
  transferring = 0;
  /** Leader: reads may be served on the lease (see get). */
  leaseReady = false;
  /** Leader: proposals of this term not yet committed, sent again before the next one. */
  pending: Entry[] = [];
  chain: Promise<unknown> = Promise.resolve();
  constructor(public st: PeerState) {}
}

export class NotLeader extends Error {
  constructor(readonly leader: number) {
    super(`NotLeader leader=${leader}`);
  }
}

export interface RaftStoreOptions {
  storeId: () => number;
  storage: RaftStorage;
  timing: RaftTiming;
  log: Logger;
  tls?: TlsPaths;
  /** Called when this store gains or loses a leader (TiKV reports it to PD at once). */
  onLeaderChange: () => void;
}

export class RaftStore {
  private readonly peers = new Map<number, Peer>();
  private timer?: NodeJS.Timeout;
  /** Stopped (the process is exiting): nothing more is written or sent. */
  private stopped = false;

  constructor(private readonly o: RaftStoreOptions) {
    for (const st of o.storage.loadAll()) this.addPeer(st);
  }

  private get self(): number {
    return this.o.storeId();
  }

  private electionMs(): number {
    return this.o.timing.tickMs * this.o.timing.electionTicks;
  }

  private resetDeadline(p: Peer): void {
    const t = this.o.timing;
    const ticks = t.minElectionTicks + Math.floor(Math.random() * (t.maxElectionTicks - t.minElectionTicks));
    p.deadline = Date.now() + ticks * t.tickMs;
  }

  private addPeer(st: PeerState): Peer {
    const p = new Peer(st);
    this.resetDeadline(p);
    this.peers.set(st.meta.id, p);
    return p;
  }

  private majority(p: Peer): number {
    return Math.floor(p.st.meta.peers.length / 2) + 1;
  }

  private others(p: Peer): number[] {
    return p.st.meta.peers.filter((s) => s !== this.self);
  }

  private save(p: Peer): void {
    if (this.stopped) throw new Error('store stopped');
    this.o.storage.save(p.st);
  }

  /** Regions from PD (the store heartbeat answer): new peers are created, newer conf versions adopted. */
  applyRegions(metas: RegionMeta[]): void {
    for (const m of metas) {
      const p = this.peers.get(m.id);
      if (!p) {
        const np = this.addPeer({ meta: m, term: 0, vote: 0, index: 0, data: {} });
        this.save(np);
        // A bootstrapped region's first leader campaigns at once, as a freshly split region does.
        if (m.bootstrap_leader === this.self) np.deadline = 0;
      } else if (m.conf_ver > p.st.meta.conf_ver || JSON.stringify(m.peer_addresses) !== JSON.stringify(p.st.meta.peer_addresses)) {
        p.st.meta = m;
        this.save(p);
      }
    }
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.floor(this.o.timing.tickMs / 4)));
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  leaders(): { id: number; term: number }[] {
    return [...this.peers.values()].filter((p) => p.role === 'leader').map((p) => ({ id: p.st.meta.id, term: p.st.term }));
  }

  counts(): { leader_count: number; region_count: number } {
    return { leader_count: this.leaders().length, region_count: this.peers.size };
  }

  private tick(): void {
    const now = Date.now();
    for (const p of this.peers.values()) {
      if (p.role === 'leader') {
        if (now - p.lastHeartbeat >= this.o.timing.heartbeatTicks * this.o.timing.tickMs) this.background(this.heartbeatRound(p));
        if (now - this.quorumContact(p) > this.electionMs()) {
          this.o.log.warn('leader lost quorum, stepping down (check_quorum)', { region: p.st.meta.id, term: p.st.term });
          this.becomeFollower(p, p.st.term, 0);
        }
      } else if (now >= p.deadline && p.st.meta.peers.includes(this.self)) {
        this.background(this.campaign(p, false));
      }
    }
  }

  /** The time by which a majority (this leader included) had answered. */
  private quorumContact(p: Peer): number {
    const times = [Date.now(), ...this.others(p).map((s) => p.acks.get(s) ?? 0)].sort((a, b) => b - a);
    return times[this.majority(p) - 1];
  }

  private becomeFollower(p: Peer, term: number, leader: number): void {
    const wasLeader = p.role === 'leader';
    if (term > p.st.term) {
      p.st.term = term;
      p.st.vote = 0;
      this.save(p);
    }
    if (p.role !== 'follower' || p.leader !== leader) this.o.log.info('became follower', { region: p.st.meta.id, term: p.st.term, leader, was: p.role });
    p.role = 'follower';
    p.leader = leader;
    p.transferring = 0;
    p.pending = [];
    if (leader) p.lastContact = Date.now();
    this.resetDeadline(p);
    if (wasLeader) this.o.onLeaderChange();
  }

  private becomeLeader(p: Peer): void {
    p.role = 'leader';
    p.leader = this.self;
    p.pending = [];
    p.leaseReady = false;
    p.acks.clear();
    for (const s of this.others(p)) p.acks.set(s, Date.now()); // check_quorum counts from here
    p.transferring = 0;
    this.o.log.info('became leader', { region: p.st.meta.id, term: p.st.term });
    this.o.onLeaderChange();
    this.background(this.heartbeatRound(p));
  }

  private async campaign(p: Peer, transfer: boolean): Promise<void> {
    p.role = 'candidate';
    p.leader = 0;
    p.st.term += 1;
    p.st.vote = this.self;
    this.save(p);
    this.resetDeadline(p);
    const term = p.st.term;
    this.o.log.info('campaign', { region: p.st.meta.id, term, transfer });
    let votes = 1;
    if (votes >= this.majority(p)) return this.becomeLeader(p);
    await Promise.all(
      this.others(p).map(async (s) => {
        const r = await this.send(p, s, { t: 'vote', region: p.st.meta.id, term, from: this.self, index: p.st.index, lastTerm: lastTermOf(p.st), transfer, meta: p.st.meta });
        if (!r || p.st.term !== term || p.role !== 'candidate') return;
        if (r.term > term) return this.becomeFollower(p, r.term, 0);
        if (r.granted && ++votes >= this.majority(p)) this.becomeLeader(p);
      }),
    );
  }

  /** One heartbeat to every other peer; followers behind get a snapshot. Returns the ack count (self included). */
  private async heartbeatRound(p: Peer): Promise<number> {
    p.lastHeartbeat = Date.now();
    const term = p.st.term;
    let acks = 1;
    await Promise.all(this.others(p).map(async (s) => {
      if (await this.syncFollower(p, s, term)) acks++;
    }));
    if (acks >= this.majority(p) && p.role === 'leader' && p.st.term === term) p.leaseReady = true;
    return acks;
  }

  /** Acks count from when the message was SENT: the follower heard the leader no earlier (TiKV's lease is send_to_quorum_ts + max_lease). */
  private async syncFollower(p: Peer, s: number, term: number): Promise<boolean> {
    const sent = Date.now();
    const r = await this.send(p, s, { t: 'hb', region: p.st.meta.id, term, from: this.self, index: p.st.index, lastTerm: lastTermOf(p.st), meta: p.st.meta });
    if (!r || !this.stillLeader(p, term, r)) return false;
    if (!r.ok) return false;
    if ((r.index !== p.st.index || (r.lastTerm ?? 0) !== lastTermOf(p.st)) && !(await this.snapshotTo(p, s, term))) return false;
    p.acks.set(s, sent);
    return true;
  }

  private stillLeader(p: Peer, term: number, r: Reply): boolean {
    if (r.term > p.st.term) {
      this.becomeFollower(p, r.term, 0);
      return false;
    }
    return p.role === 'leader' && p.st.term === term;
  }

  private async snapshotTo(p: Peer, s: number, term: number): Promise<boolean> {
    const r = await this.send(p, s, { t: 'snap', region: p.st.meta.id, term, from: this.self, index: p.st.index, lastTerm: lastTermOf(p.st), data: p.st.data, meta: p.st.meta });
    return !!r && this.stillLeader(p, term, r) && r.ok === true;
  }

  /** Leader: hands the region to `to` (PD's transfer-leader operator), without an election timeout. */
  async transferLeader(regionId: number, term: number, to: number): Promise<void> {
    const p = this.peers.get(regionId);
    if (!p || p.role !== 'leader' || p.st.term !== term || p.transferring || !p.st.meta.peers.includes(to) || to === this.self) return;
    await this.withRegion(p, async () => {
      // TiKV's ready_to_transfer_leader: a target that does not answer or is behind (and cannot be
      // caught up) is refused before the transfer starts, so writes never wait on a dead target.
      if (p.role !== 'leader' || p.st.term !== term || !(await this.syncFollower(p, to, term))) {
        this.o.log.info('transfer leader is rejected', { region: regionId, term, to });
        return;
      }
      p.transferring = to;
      this.o.log.info('transfer leader', { region: regionId, term, to });
      await this.send(p, to, { t: 'timeout_now', region: regionId, term, from: this.self });
      // raft-rs aborts a transfer that did not finish within an election timeout.
      setTimeout(() => {
        if (p.role === 'leader' && p.transferring === to) p.transferring = 0;
      }, this.electionMs());
    }).catch((e: Error) => {
      // PD sends the operator again with the next heartbeat; a stopping store drops it.
      if (!this.stopped) this.o.log.warn('transfer leader failed', { region: regionId, to, error: e.message });
    });
  }

  /** Work nobody waits for (a campaign, a heartbeat round): a stopped store's failures end there. */
  private background(work: Promise<unknown>): void {
    work.catch((e: Error) => {
      if (!this.stopped) this.o.log.warn('raft background work failed', { error: e.message });
    });
  }

  private withRegion<T>(p: Peer, fn: () => Promise<T>): Promise<T> {
    const run = p.chain.then(fn);
    p.chain = run.catch(() => undefined);
    return run;
  }

  private leaderOrThrow(regionId: number): Peer {
    const p = this.peers.get(regionId);
    if (!p) throw new Error(`RegionNotFound region_id=${regionId}`);
    if (p.role !== 'leader') throw new NotLeader(p.leader === this.self ? 0 : p.leader);
    if (p.transferring) throw new NotLeader(p.transferring);
    return p;
  }

  async put(regionId: number, key: string, value: string, ts: bigint): Promise<boolean> {
    const p0 = this.leaderOrThrow(regionId);
    return this.withRegion(p0, async () => {
      const p = this.leaderOrThrow(regionId);
      const term = p.st.term;
      const entries = [...p.pending, { k: key, v: value, ts: ts.toString(), index: p.st.index + p.pending.length + 1, term }];
      const acked = await this.quorum(p, (s) => this.appendTo(p, s, term, entries));
      if (acked < this.majority(p) || p.role !== 'leader' || p.st.term !== term) {
        if (p.role === 'leader' && p.st.term === term) p.pending = entries;
        throw new Error(`proposal not committed: ${acked} of ${p.st.meta.peers.length} peers (majority ${this.majority(p)})`);
      }
      let data = p.st.data;
      for (const e of entries.slice(0, -1)) data = written(data, e.k, e.v, e.ts);
      const existed = entryOf(data, key) !== undefined;
      p.st.data = written(data, key, value, ts.toString());
      p.st.index = entries[entries.length - 1].index;
      p.st.lastTerm = term;
      p.pending = [];
      p.leaseReady = true;
      this.save(p);
      return existed;
    });
  }

  /** Resolves once a majority (self included) acked, or all answered. */
  private quorum(p: Peer, call: (s: number) => Promise<boolean>): Promise<number> {
    return new Promise((resolve) => {
      const others = this.others(p);
      let acks = 1;
      let answered = 0;
      if (acks >= this.majority(p) || others.length === 0) return resolve(acks);
      for (const s of others) {
        void call(s).catch(() => false).then((ok) => {
          answered++;
          if (ok) acks++;
          if (acks >= this.majority(p) || answered === others.length) resolve(acks);
        });
      }
    });
  }

  private async appendTo(p: Peer, s: number, term: number, entries: Entry[], resynced = false): Promise<boolean> {
    const sent = Date.now();
    const r = await this.send(p, s, { t: 'append', region: p.st.meta.id, term, from: this.self, index: p.st.index, lastTerm: lastTermOf(p.st), entries, meta: p.st.meta });
    if (!r || !this.stillLeader(p, term, r)) return false;
    if (r.snapshot) {
      if (resynced || !(await this.snapshotTo(p, s, term))) return false;
      return this.appendTo(p, s, term, entries, true);
    }
    if (r.ok) p.acks.set(s, sent);
    return r.ok === true;
  }

  async get(regionId: number, key: string, ts: bigint): Promise<string | undefined> {
    const p = this.leaderOrThrow(regionId);
    // TiKV serves a local (lease) read only once a new leader committed an entry of its term
    // (raftstore peer.rs on_role_changed: "The local read can only be performed after a new leader
    // has applied the first empty entry on its term"); here, once a write or a heartbeat round of
    // its term reached a majority.
    if (!p.leaseReady || Date.now() - this.quorumContact(p) >= this.o.timing.leaseMs) {
      // No lease: ReadIndex, a heartbeat round that must reach a majority.
      const term = p.st.term;
      if ((await this.heartbeatRound(p)) < this.majority(p) || p.st.term !== term) throw new NotLeader(0);
    }
    return readAt(entryOf(p.st.data, key), ts);
  }

  /** A raft message from another store (its TLS and CN already checked by the server port). */
  handle(m: Msg): Reply {
    let p = this.peers.get(m.region);
    if (!p) {
      // TiKV creates a peer on the first message for a region this store belongs to (maybe_create_peer).
      if (!m.meta || !m.meta.peers.includes(this.self)) return { term: 0, ok: false };
      p = this.addPeer({ meta: m.meta, term: 0, vote: 0, index: 0, data: {} });
      this.save(p);
    }
    if (m.meta && m.meta.conf_ver > p.st.meta.conf_ver) {
      p.st.meta = m.meta;
      this.save(p);
    }
    const now = Date.now();
    if (m.t === 'vote') {
      const inLease = p.role === 'leader' || (p.leader !== 0 && now - p.lastContact < this.o.timing.minElectionTicks * this.o.timing.tickMs);
      if (!m.transfer && inLease) return { term: p.st.term, granted: false };
      if (m.term < p.st.term) return { term: p.st.term, granted: false };
      if (m.term > p.st.term) this.becomeFollower(p, m.term, 0);
      const [ct, ci] = [m.lastTerm ?? 0, m.index ?? 0];
      const upToDate = ct > lastTermOf(p.st) || (ct === lastTermOf(p.st) && ci >= p.st.index);
      const granted = (p.st.vote === 0 || p.st.vote === m.from) && upToDate;
      if (granted) {
        p.st.vote = m.from;
        this.save(p);
        this.resetDeadline(p);
      }
      return { term: p.st.term, granted };
    }
    if (m.term < p.st.term) return { term: p.st.term, ok: false };
    if (m.t === 'timeout_now') {
      if (m.term === p.st.term && p.role === 'follower') this.background(this.campaign(p, true));
      return { term: p.st.term, ok: true };
    }
    // hb / append / snap come from the leader of m.term.
    if (p.role !== 'follower' || p.leader !== m.from || m.term > p.st.term) this.becomeFollower(p, m.term, m.from);
    p.lastContact = now;
    this.resetDeadline(p);
    const state = (): Reply => ({ term: p!.st.term, ok: true, index: p!.st.index, lastTerm: lastTermOf(p!.st) });
    if (m.t === 'hb') return state();
    if (m.t === 'snap') {
      // raft-rs Raft::restore ignores a snapshot older than what the follower committed. Here: a
      // follower already holding entries of this leader's term past the snapshot keeps them (every
      // message goes over its own connection, so an older snapshot can arrive after a newer append
      // this follower acknowledged; taking it would un-commit a write the client was told is done).
      if (lastTermOf(p.st) === m.term && p.st.index > (m.index ?? 0)) return state();
      this.o.log.info('restored snapshot', { region: p.st.meta.id, term: p.st.term, from: m.from, index: m.index ?? 0, last_term: m.lastTerm ?? 0, was: p.st.index });
      p.st.data = m.data ?? {};
      p.st.index = m.index ?? 0;
      p.st.lastTerm = m.lastTerm ?? 0;
      this.save(p);
      return state();
    }
    // Entries apply only onto the exact state they follow (index and its term), else a snapshot. A
    // follower that already holds some of them (this leader's term, an index inside the batch: sent
    // before, answer lost) skips those, as raft-rs RaftLog::maybe_append does with find_conflict;
    // within a term an index names one entry, so they are the same entries.
    const es = m.entries ?? [];
    const follows = (m.index ?? 0) === p.st.index && (m.lastTerm ?? 0) === lastTermOf(p.st);
    const holds = lastTermOf(p.st) === m.term && es.length > 0 && p.st.index >= es[0].index && p.st.index <= es[es.length - 1].index;
    if (es.length === 0 || es[0].index !== (m.index ?? 0) + 1 || (!follows && !holds)) {
      return { term: p.st.term, snapshot: true };
    }
    let data = p.st.data;
    for (const e of es) if (e.index > p.st.index) data = written(data, e.k, e.v, e.ts);
    p.st.data = data;
    p.st.index = es[es.length - 1].index;
    p.st.lastTerm = es[es.length - 1].term;
    this.save(p);
    return state();
  }

  /** One message over a fresh connection to the peer's server port (TLS with this store's identity when on). */
  private send(p: Peer, store: number, m: Msg): Promise<Reply | undefined> {
    const addr = p.st.meta.peer_addresses[String(store)];
    if (!addr || this.stopped) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      let sock: net.Socket;
      try {
        const { host, port } = splitHostPort(addr);
        sock = this.o.tls
          ? tls.connect({ host, port, ...clientTlsOptions(this.o.tls), ALPNProtocols: ['h2'], servername: net.isIP(host) ? undefined : host })
          : net.connect({ host, port });
      } catch {
        return resolve(undefined);
      }
      let buf = '';
      const done = (r?: Reply): void => {
        clearTimeout(timer);
        sock.destroy();
        resolve(r);
      };
      const timer = setTimeout(() => done(), MSG_TIMEOUT_MS);
      sock.once(this.o.tls ? 'secureConnect' : 'connect', () => sock.write(`raft ${JSON.stringify(m)}\n`));
      sock.setEncoding('utf8');
      sock.on('data', (d: string) => {
        buf += d;
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        try {
          const r = JSON.parse(buf.slice(0, nl)) as Reply;
          done(typeof r.term === 'number' ? r : undefined);
        } catch {
          done(); // "error: Common name check fail…" and the like: no answer
        }
      });
      sock.on('error', () => done());
      sock.on('close', () => done());
    });
  }
}
