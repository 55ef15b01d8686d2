/**
 * Crash-safe file writes: a temp file in the same directory, opened with the final mode (so a
 * key is never readable by others, not even for a moment), fsynced, then moved into place and
 * the directory fsynced so the rename itself survives a crash.
 */
import fs from 'fs';
import path from 'path';
import crypto from 'crypto';

export interface AtomicWriteOptions {
  mode: number;
  /** false: fail with EEXIST instead of replacing an existing file (link(2) is atomic and refuses to clobber). */
  overwrite?: boolean;
}

export async function writeFileAtomic(file: string, data: string | Buffer, opts: AtomicWriteOptions): Promise<void> {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`);
  // 'wx': never follow or reuse something already at the temp path.
  const fh = await fs.promises.open(tmp, 'wx', opts.mode);
  try {
    try {
      await fh.chmod(opts.mode); // the umask may have taken bits away; the mode must be exact
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (opts.overwrite === false) {
      await fs.promises.link(tmp, file);
      await fs.promises.unlink(tmp);
    } else {
      await fs.promises.rename(tmp, file);
    }
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dir);
}

export async function fsyncDir(dir: string): Promise<void> {
  const dh = await fs.promises.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * mkdir -p; the levels it creates get exactly `mode` (mkdir's mode is filtered by the umask). A
 * directory that existed is never chmodded: it may not be tiseal's (`--state-dir /tmp`).
 */
export async function ensurePrivateDir(dir: string, mode = 0o700): Promise<void> {
  const first = await fs.promises.mkdir(dir, { recursive: true, mode });
  if (first === undefined) return;
  const target = path.resolve(dir);
  for (let d = path.resolve(first); ; d = path.join(d, path.relative(d, target).split(path.sep)[0]!)) {
    await fs.promises.chmod(d, mode);
    if (d === target) break;
  }
}
