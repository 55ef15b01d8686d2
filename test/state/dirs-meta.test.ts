import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { LocalStateError } from '../../src/errors';
import { CertStore } from '../../src/pki';
import { ClusterDir } from '../../src/state/cluster-dir';
import { readMeta } from '../../src/state/meta';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-dirs-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
const modeOf = (p: string) => fs.statSync(p).mode & 0o7777;

describe('state directories', () => {
  it('never changes the mode of a state dir it did not create (--state-dir /tmp), but creates its own 0700', async () => {
    const shared = path.join(dir, 'shared');
    fs.mkdirSync(shared);
    fs.chmodSync(shared, 0o1777);
    new ClusterDir(shared, 'prod').ensure();
    await new CertStore(shared, 'prod').init();
    expect(modeOf(shared)).toBe(0o1777);
    for (const d of ['clusters', 'clusters/prod', 'clusters/prod/tls']) expect(modeOf(path.join(shared, d))).toBe(0o700);
  });
  it('creates a missing state dir 0700, whatever the umask', () => {
    const old = process.umask(0o022);
    try {
      new ClusterDir(path.join(dir, 'new', 'state'), 'prod').ensure();
    } finally {
      process.umask(old);
    }
    expect(modeOf(path.join(dir, 'new', 'state'))).toBe(0o700);
    expect(modeOf(path.join(dir, 'new', 'state', 'clusters', 'prod'))).toBe(0o700);
  });
  it('refuses a cluster dir that is a symlink (planted in a shared state dir)', () => {
    fs.mkdirSync(path.join(dir, 'clusters'), { mode: 0o700 });
    fs.mkdirSync(path.join(dir, 'elsewhere'));
    fs.symlinkSync(path.join(dir, 'elsewhere'), path.join(dir, 'clusters', 'prod'));
    expect(() => new ClusterDir(dir, 'prod').ensure()).toThrow(/clusters\/prod.*symbolic link/);
  });
  it('says which path when the state dir is a file or not writable', () => {
    const file = path.join(dir, 'afile');
    fs.writeFileSync(file, '');
    const e = (() => {
      try {
        new ClusterDir(file, 'prod').ensure();
      } catch (err) {
        return err as LocalStateError;
      }
      throw new Error('expected an error');
    })();
    expect(e).toBeInstanceOf(LocalStateError);
    expect(e.message).toContain(file);
    expect(e.suggestion).toMatch(/--state-dir/);
    if (process.getuid?.() !== 0) {
      const ro = path.join(dir, 'ro');
      fs.mkdirSync(ro, { mode: 0o500 });
      expect(() => new ClusterDir(ro, 'prod').ensure()).toThrow(LocalStateError);
    }
  });
});

describe('meta.json', () => {
  it('reports a truncated or non-object meta.json with its path and what to do', () => {
    const f = path.join(dir, 'meta.json');
    for (const bad of ['{"enableTls": tr', 'null', '[1]']) {
      fs.writeFileSync(f, bad);
      expect(() => readMeta(f)).toThrow(LocalStateError);
      expect(() => readMeta(f)).toThrow(new RegExp(f.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')));
    }
    fs.writeFileSync(f, '{"enableTls": true}');
    expect(readMeta(f)).toEqual({ enableTls: true });
    fs.rmSync(f);
    expect(readMeta(f)).toBeUndefined();
    fs.mkdirSync(f);
    expect(() => readMeta(f)).toThrow(LocalStateError);
  });
});
