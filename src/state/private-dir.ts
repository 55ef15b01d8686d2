import * as fs from 'fs';
import * as path from 'path';
import { LocalStateError, localIoError } from '../errors';

const STATE_HINT = 'pass a --state-dir that is a directory you can write (default ~/.tiseal)';

/**
 * Make `dir` exist. A directory tiseal creates is 0700, exactly (the umask cannot widen it, chmod
 * makes it exact); one that exists already is left as it is: the state dir may be the user's own
 * (`--state-dir /tmp` as root must not make /tmp 0700).
 */
function ensureDir(dir: string, ownLevel: boolean): void {
  let st: fs.Stats | undefined;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw localIoError(e, dir, 'use the state directory', STATE_HINT);
  }
  if (st) {
    // The user's own state dir may be a symlink to where they keep it; tiseal's levels below it may not.
    if (st.isSymbolicLink() && !ownLevel) st = fs.statSync(dir, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) {
      throw new LocalStateError(`${dir} is a symbolic link; tiseal keeps its state in real directories only`, { suggestion: `remove it (rm ${dir}) if you did not make it, or pass another --state-dir` });
    }
    if (!st?.isDirectory()) throw new LocalStateError(`${dir} is not a directory`, { suggestion: STATE_HINT });
    if (ownLevel && typeof process.getuid === 'function' && st.uid !== process.getuid()) {
      throw new LocalStateError(`${dir} belongs to uid ${st.uid}, not to the user running tiseal`, { suggestion: `remove it if you did not make it, or run tiseal as its owner; ${STATE_HINT}` });
    }
    return;
  }
  const parent = path.dirname(dir);
  if (parent !== dir) ensureDir(parent, false);
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chmodSync(dir, 0o700);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return ensureDir(dir, ownLevel); // a concurrent creator
    throw localIoError(e, dir, 'create the state directory', STATE_HINT);
  }
}

/** `<stateDir>/<levels...>`: the state dir as given, tiseal's own levels below it 0700 and owned by us. */
export function ensureStateDirs(stateDir: string, levels: string[]): string {
  ensureDir(stateDir, false);
  let d = stateDir;
  for (const l of levels) ensureDir((d = path.join(d, l)), true);
  return d;
}
