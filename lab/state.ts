/**
 * The lab's record of what it created on the machine: nspawn PIDs, overlays, cgroups, the bridge.
 * `down` removes exactly what is listed here and nothing else. Written after every change so a
 * failed `up` can still be cleaned up.
 */
import * as fs from 'fs';
import * as path from 'path';
import { writeFileAtomic } from './sys';

export interface HostRecord {
  host: string; // IP address, as in the topology
  hostname: string;
  machine: string; // nspawn --machine name
  pid?: number; // systemd-nspawn PID
  pidStart?: string; // its start time, guards against PID reuse
  /** overlay root holding upper/, work/, merged/ */
  overlayRoot: string;
  merged: string;
  mounted: boolean;
  /** cgroup directories created for this host (removed depth-first) */
  cgroups: string[];
  consoleLog: string;
  bootedAt?: string;
}

export interface LabState {
  version: 1;
  dir: string;
  rootfs: string;
  subnet: string;
  bridge: { name: string; address: string; created: boolean };
  hosts: HostRecord[];
  /** What the last successful deploy put on the hosts (a second `up` skips a healthy, unchanged cluster). */
  deployed?: { topologySha256: string; version: string; at: string };
  updatedAt: string;
}

export const STATE_FILE = 'lab-state.json';

export function statePath(dir: string): string {
  return path.join(dir, STATE_FILE);
}

export function readState(dir: string): LabState | undefined {
  const file = statePath(dir);
  if (!fs.existsSync(file)) return undefined;
  const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as LabState;
  if (parsed.version !== 1) throw new Error(`${file}: unknown lab state version ${String(parsed.version)}`);
  return parsed;
}

export function writeState(state: LabState): void {
  state.updatedAt = new Date().toISOString();
  writeFileAtomic(statePath(state.dir), JSON.stringify(state, null, 2) + '\n');
}

export function removeState(dir: string): void {
  fs.rmSync(statePath(dir), { force: true });
}
