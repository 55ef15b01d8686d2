import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import { LockError, localIoError } from '../errors';

export interface LockInfo {
  pid: number;
  host: string;
  started: string;
  command: string;
}

/** flock(1)'s exit code when the lock is taken (-E), distinct from its own errors. */
const BUSY = 75;

function readInfo(fd: number): Partial<LockInfo> | undefined {
  try {
    const size = fs.fstatSync(fd).size;
    if (size === 0 || size > 64 * 1024) return undefined;
    const buf = Buffer.alloc(size);
    fs.readSync(fd, buf, 0, size, 0);
    const v = JSON.parse(buf.toString('utf8'));
    return v && typeof v === 'object' ? (v as Partial<LockInfo>) : undefined;
  } catch {
    return undefined;
  }
}

const describe = (i: Partial<LockInfo>) => `pid ${i.pid ?? '?'} on ${i.host ?? '?'} since ${i.started ?? '?'} (${i.command ?? '?'})`;

/**
 * One run per cluster: an flock(2) lock on `<cluster>/lock`, held for the whole run. Node has no
 * flock, so util-linux flock(1) takes it on our descriptor (passed as its fd 3); the lock belongs
 * to the open file description, which this process keeps open after flock exits. The kernel drops
 * it when tiseal ends in any way (SIGKILL, OOM, closed terminal): a killed run never blocks the
 * next one. The file only carries the holder's details for the message, so its content never
 * decides anything on this machine; a record written from another machine (shared storage, where
 * flock may not reach) is reported instead of taken over.
 */
export class ClusterLock {
  private fd?: number;
  /** The holder recorded by a run that ended without releasing (killed): shown to the user. */
  previous?: Partial<LockInfo>;
  constructor(private file: string) {}

  acquire(command: string): void {
    let fd: number;
    try {
      fd = fs.openSync(this.file, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
      if (!fs.fstatSync(fd).isFile()) {
        fs.closeSync(fd);
        throw Object.assign(new Error('not a regular file'), { code: 'EISDIR' });
      }
    } catch (e) {
      throw localIoError(e, this.file, 'open the lock file', `remove ${this.file} if it is not tiseal's lock file, and re-run`);
    }
    try {
      const r = spawnSync('flock', ['--nonblock', '--exclusive', '--conflict-exit-code', String(BUSY), '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
      if (r.error) {
        throw new LockError(`cannot run flock(1) to lock ${this.file}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`, { suggestion: 'install util-linux (it provides flock), e.g. apt-get install util-linux' });
      }
      const other = readInfo(fd);
      if (r.status === BUSY) {
        throw new LockError(`another tiseal run holds the lock ${this.file}: ${other ? describe(other) : 'a run that has not written its details yet'}`, {
          suggestion: 'wait for it to finish; the lock goes away with that process, even if it is killed',
        });
      }
      if (r.status !== 0) throw new LockError(`flock(1) failed on ${this.file} (exit ${r.status}): ${String(r.stderr).trim()}`, { suggestion: `check ${this.file} and its file system` });
      if (other?.host !== undefined && other.host !== os.hostname()) {
        throw new LockError(`the lock ${this.file} was taken on another machine: ${describe(other)}; tiseal cannot tell from here whether that run is still going`, {
          suggestion: `make sure no tiseal run on ${other.host} works on this cluster, then clear it: rm ${this.file}`,
        });
      }
      this.previous = other?.pid !== undefined ? other : undefined;
      const info: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString(), command };
      try {
        fs.ftruncateSync(fd, 0);
        fs.writeSync(fd, JSON.stringify(info) + '\n', 0);
        fs.fsyncSync(fd);
      } catch (e) {
        throw localIoError(e, this.file, 'write the lock file');
      }
      this.fd = fd;
    } catch (e) {
      fs.closeSync(fd); // releases the flock, if taken
      throw e;
    }
  }

  /**
   * Empty the record, then let go. The file stays: unlinking it would let a run that opened it
   * just before lock the removed inode while a third run locks a new file.
   */
  release(): void {
    if (this.fd === undefined) return;
    try {
      fs.ftruncateSync(this.fd, 0);
    } catch {
      /* the lock goes with the descriptor anyway */
    }
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}
