import { ConfigError, getNumber, getString, Table } from '../common/toml';

/**
 * TiKV's raft timing keys (components/raftstore/src/store/config.rs, defaults and validate()):
 * `raftstore.raft-base-tick-interval` (1s) × `raft-election-timeout-ticks` (10) is the election
 * timeout; raft-rs randomizes each follower's timeout in [min, max) ticks with
 * `raft-min-election-timeout-ticks` (0 = election ticks) and `raft-max-election-timeout-ticks`
 * (0 = 2 × election ticks); the leader heartbeats every `raft-heartbeat-ticks` (2) and serves reads
 * on its lease `raft-store-max-leader-lease` (9s), which validate() keeps below the election timeout.
 */
export interface RaftTiming {
  tickMs: number;
  heartbeatTicks: number;
  electionTicks: number;
  minElectionTicks: number;
  maxElectionTicks: number;
  leaseMs: number;
}

/** TiKV's ReadableDuration ("1s", "100ms", "1m30s", "2h"). */
export function parseReadableDuration(key: string, s: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000, d: 86400000 };
  let total = 0;
  let m: RegExpExecArray | null;
  let pos = 0;
  while ((m = re.exec(s))) {
    total += Number(m[1]) * unit[m[2]];
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== s.length) throw new ConfigError(`invalid duration: ${JSON.stringify(s)} for key \`${key}\``);
  return Math.round(total);
}

export function raftTiming(raw: Table): RaftTiming {
  const dur = (k: string, def: number): number => {
    const v = getString(raw, `raftstore.${k}`);
    return v === undefined ? def : parseReadableDuration(`raftstore.${k}`, v);
  };
  const int = (k: string, def: number): number => getNumber(raw, `raftstore.${k}`) ?? def;
  const tickMs = dur('raft-base-tick-interval', 1000);
  const heartbeatTicks = int('raft-heartbeat-ticks', 2);
  const electionTicks = int('raft-election-timeout-ticks', 10);
  const minElectionTicks = int('raft-min-election-timeout-ticks', 0) || electionTicks;
  const maxElectionTicks = int('raft-max-election-timeout-ticks', 0) || 2 * electionTicks;
  const leaseMs = dur('raft-store-max-leader-lease', 9000);
  return { tickMs, heartbeatTicks, electionTicks, minElectionTicks, maxElectionTicks, leaseMs };
}

/** The checks of config.rs validate() that concern these keys, with its messages. */
export function validateRaftTiming(t: RaftTiming): void {
  if (t.heartbeatTicks === 0) throw new ConfigError('heartbeat tick must greater than 0');
  if (t.electionTicks <= t.heartbeatTicks) throw new ConfigError('election tick must be greater than heartbeat tick');
  if (t.minElectionTicks < t.electionTicks || t.minElectionTicks >= t.maxElectionTicks) {
    throw new ConfigError(`invalid timeout range [${t.minElectionTicks}, ${t.maxElectionTicks}) for timeout ${t.electionTicks}`);
  }
  const election = t.tickMs * t.electionTicks;
  if (election < t.leaseMs) throw new ConfigError(`election timeout ${election} ms is less than lease ${t.leaseMs} ms`);
  if (t.leaseMs > election - t.tickMs) {
    throw new ConfigError(`lease ${t.leaseMs} ms should not be greater than election timeout ${election} ms - 1 tick(${t.tickMs} ms)`);
  }
}
