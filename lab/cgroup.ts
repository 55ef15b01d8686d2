/**
 * Per-host cgroups. The machine's PID 1 is not systemd, so nothing gives each nspawn its own
 * cgroup: without one, every container's systemd shares a tree and one host's systemd kills
 * another's units. We create one directory per host in the named `systemd` v1 hierarchy and in the
 * `unified` (v2) one, and the launcher moves itself there before exec'ing nspawn.
 */
import * as fs from 'fs';
import * as path from 'path';
import { pidAlive, sleep } from './sys';

export const CGROUP_ROOT = '/sys/fs/cgroup';
export const CGROUP_PARENT = 'tiseal-lab';

/** The hierarchies systemd inside the container uses, present on this machine. */
export function cgroupHierarchies(root = CGROUP_ROOT): string[] {
  const hs: string[] = [];
  if (fs.existsSync(path.join(root, 'systemd', 'cgroup.procs'))) hs.push(path.join(root, 'systemd'));
  if (fs.existsSync(path.join(root, 'unified', 'cgroup.procs'))) hs.push(path.join(root, 'unified'));
  if (hs.length === 0 && fs.existsSync(path.join(root, 'cgroup.procs'))) hs.push(root); // pure v2 machine
  return hs;
}

/** Create `<hierarchy>/tiseal-lab/<machine>` in every hierarchy; returns the directories. */
export function createHostCgroups(machine: string, root = CGROUP_ROOT): string[] {
  const dirs: string[] = [];
  for (const h of cgroupHierarchies(root)) {
    const dir = path.join(h, CGROUP_PARENT, machine);
    fs.mkdirSync(dir, { recursive: true });
    dirs.push(dir);
  }
  return dirs;
}

function subdirsDepthFirst(dir: string): string[] {
  const out: string[] = [];
  let entries: fs.Dirent[] = [];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.isDirectory()) out.push(...subdirsDepthFirst(path.join(dir, e.name)));
  }
  out.push(dir);
  return out;
}

function procsIn(dir: string): number[] {
  try {
    return fs
      .readFileSync(path.join(dir, 'cgroup.procs'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** All PIDs still inside a host's cgroups (leftovers after nspawn exited). */
export function pidsInCgroups(dirs: string[]): number[] {
  const pids = new Set<number>();
  for (const d of dirs) for (const sub of subdirsDepthFirst(d)) for (const p of procsIn(sub)) pids.add(p);
  return [...pids];
}

/**
 * Remove a host's cgroup directories depth-first (nspawn leaves payload/…, supervisor behind).
 * Processes still inside are the lab's own (the container's), so they are killed by PID first.
 */
export async function removeHostCgroups(dirs: string[]): Promise<string[]> {
  const problems: string[] = [];
  const leftovers = pidsInCgroups(dirs);
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (let i = 0; i < 40 && leftovers.some(pidAlive); i++) await sleep(50);
  for (const d of dirs) {
    if (!fs.existsSync(d)) continue;
    for (const sub of subdirsDepthFirst(d)) {
      try {
        fs.rmdirSync(sub);
      } catch (e) {
        problems.push(`${sub}: ${(e as Error).message}`);
      }
    }
  }
  // Drop the shared parent when the last host is gone.
  for (const parent of new Set(dirs.map((d) => path.dirname(d)))) {
    if (path.basename(parent) !== CGROUP_PARENT) continue;
    try {
      const left = fs.readdirSync(parent, { withFileTypes: true }).filter((e) => e.isDirectory());
      if (left.length === 0) fs.rmdirSync(parent);
    } catch {
      /* still used by another lab */
    }
  }
  return problems;
}
