import * as fs from 'fs';
import * as os from 'os';
import { LockError } from '../errors';

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * An exclusive lock file (O_EXCL) so two runs on one cluster cannot interleave. A lock left by a
 * dead process on this machine is reported, not silently stolen: the operator decides.
 */
export class ClusterLock {
  private held = false;
  constructor(private file: string) {}

  acquire(command: string): void {
    const info: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command };
    try {
      const fd = fs.openSync(this.file, 'wx', 0o600);
      fs.writeSync(fd, JSON.stringify(info) + '\n');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      this.held = true;
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let other: Partial<LockInfo> = {};
    try {
      other = JSON.parse(fs.readFileSync(this.file, 'utf8'));
    } catch {
      /* unreadable lock: report it as is */
    }
    const who = `pid ${other.pid ?? '?'} on ${other.host ?? '?'} since ${other.started ?? '?'} (${other.command ?? '?'})`;
    if (other.host === os.hostname() && typeof other.pid === 'number' && !alive(other.pid)) {
      throw new LockError(`stale lock ${this.file}: held by ${who}, which is no longer running`, {
        suggestion: `make sure no tiseal runs on this cluster, then remove it: rm ${this.file} (the journal keeps the interrupted run; re-running resumes it)`,
      });
    }
    throw new LockError(`another tiseal run holds the lock ${this.file}: ${who}`, {
      suggestion: 'wait for it to finish; if that process is gone on another machine, remove the lock file by hand',
    });
  }

  release(): void {
    if (!this.held) return;
    try {
      fs.unlinkSync(this.file);
    } catch {
      /* already gone */
    }
    this.held = false;
  }
}
