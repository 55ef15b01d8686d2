import * as fs from 'fs';
import * as path from 'path';
import { localIoError } from '../errors';

/**
 * Atomic local write (temp + fsync + rename) into TiUP's storage. Files keep the owner of the
 * TiUP cluster dir: tiseal run as root must not leave root-owned files TiUP (its user) cannot read.
 */
export function writeTiupFile(file: string, data: string, mode: number, owner: { uid: number; gid: number }): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.tiseal-${process.pid}-${Date.now()}.tmp`);
  try {
    ensureTiupDir(dir, owner);
    const fd = fs.openSync(tmp, 'wx', mode);
    try {
      fs.fchmodSync(fd, mode); // the umask may have taken bits away
      if (process.getuid?.() === 0) fs.fchownSync(fd, owner.uid, owner.gid);
      fs.writeSync(fd, data);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw localIoError(e, file, 'write', 'check that TIUP_HOME is writable by the user running tiseal, or pass --no-tiup-meta');
  }
}

/** A directory tiseal creates in TiUP's storage: 0700, owned like the cluster dir; a real directory, never a symlink. */
function ensureTiupDir(dir: string, owner: { uid: number; gid: number }): void {
  const st = fs.lstatSync(dir, { throwIfNoEntry: false });
  if (st?.isDirectory()) return;
  if (st) throw Object.assign(new Error(`${dir} is not a directory`), { code: 'ENOTDIR' });
  fs.mkdirSync(dir, { mode: 0o700 });
  fs.chmodSync(dir, 0o700);
  if (process.getuid?.() === 0) fs.chownSync(dir, owner.uid, owner.gid);
}
