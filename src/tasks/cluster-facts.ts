import type { ProbeResult } from '../net/probe';
import type { PdMember, PdStore } from '../pd/client';
import type { UnitState } from './remote';

// What preflight learns about a cluster and what it finds wrong: types only, so the run context can
// carry them without importing the modules that gather (facts.ts) and judge (preflight.ts) them.

export type TlsConfigState = 'on' | 'off' | 'partial';

export interface InstanceFacts {
  unit?: UnitState;
  /** TLS as the instance's config files (and run script) say. */
  config: TlsConfigState;
  /** The CN allow-list its (first) TLS config sets, if any. */
  allowedCn?: string[];
  /** What the instance's first TLS port speaks right now. */
  live?: ProbeResult;
}

export interface HostFacts {
  host: string;
  sudo: boolean;
  /** host clock minus local clock, seconds (positive: host is ahead). */
  clockSkewSec: number;
  /** free KiB per deploy dir */
  freeKb: Record<string, number>;
}

export interface ClusterFacts {
  hosts: Map<string, HostFacts>;
  instances: Map<string, InstanceFacts>;
  members: PdMember[];
  leader?: PdMember;
  stores: PdStore[];
  pdVersion?: string;
}

export interface Problem {
  severity: 'error' | 'warning';
  where: string;
  message: string;
  suggestion?: string;
}
