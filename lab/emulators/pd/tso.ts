import type { Gateway } from './etcd';

/**
 * TSO, the way PD's leader allocates it (tikv/pd pkg/tso/tso.go): physical milliseconds << 18 |
 * logical, served only by the leader (others answer "not leader", as PD's gRPC Tso does), with a
 * time window saved in etcd (`tso-save-interval`, 3s) before any timestamp inside it is handed out,
 * so a new leader starts above everything the previous one gave and a member that lost quorum
 * cannot serve past its window. Stand-in for the gRPC Tso stream: `POST /pd/api/v1/emulator/tso`.
 */
const SAVE_INTERVAL_MS = 3000;
const LOGICAL_BITS = 18n;

export class NotLeaderError extends Error {}

export class TsoAllocator {
  private physical = 0;
  private logical = 0;
  private savedUntil = 0;
  private wasLeader = false;

  constructor(private readonly g: Gateway, private readonly key: string) {}

  private chain: Promise<unknown> = Promise.resolve();

  /** Serialized: a new term's sync must finish before any timestamp of that term is handed out. */
  next(selfId: bigint): Promise<bigint> {
    const run = this.chain.then(() => this.nextLocked(selfId));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async nextLocked(selfId: bigint): Promise<bigint> {
    const st = await this.g.status();
    if (st.leaderId === 0n || st.leaderId !== selfId) {
      this.wasLeader = false;
      throw new NotLeaderError(st.leaderId === 0n ? 'no leader' : 'not leader');
    }
    if (!this.wasLeader) {
      // New term: continue above the window the previous leader saved (SyncTimestamp).
      const saved = await this.g.get(this.key);
      const last = saved && saved.length === 8 ? Number(saved.readBigUInt64BE(0)) : 0;
      this.physical = Math.max(Date.now(), last + 1);
      this.logical = 0;
      this.savedUntil = 0;
      this.wasLeader = true;
    }
    const now = Date.now();
    if (now > this.physical) {
      this.physical = now;
      this.logical = 0;
    }
    if (++this.logical >= 1 << 18) {
      this.physical++;
      this.logical = 0;
    }
    if (this.physical >= this.savedUntil) {
      const until = this.physical + SAVE_INTERVAL_MS;
      const b = Buffer.alloc(8);
      b.writeBigUInt64BE(BigInt(until));
      await this.g.put(this.key, b); // needs quorum: a PD cut off from its peers stops here
      this.savedUntil = until;
    }
    return (BigInt(this.physical) << LOGICAL_BITS) | BigInt(this.logical);
  }
}
