/** The RSA key pool: worker-made keys, on-demand fallback, typed errors, and no hold on the process. */
import { spawnSync } from 'child_process';
import path from 'path';
import { CertError } from '../../src/errors';
import { RsaKeyPool, createCA, issueLeaf, RSA_BITS } from '../../src/pki';
import { TempDir, openssl } from './helpers';

const SRC = path.join(__dirname, '..', '..', 'src');
jest.setTimeout(60_000); // RSA prime search on a shared, loaded machine

/** Run `body` in a fresh node process that loads src/ TypeScript through a transpile-only hook. */
function inChild(body: string): { code: number | null; stdout: string; stderr: string; ms: number } {
  const hook = `const ts = require(${JSON.stringify(require.resolve('typescript'))}); const fs = require('fs');
require.extensions['.ts'] = (m, f) => m._compile(ts.transpileModule(fs.readFileSync(f, 'utf8'), { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, f);
const { RsaKeyPool } = require(${JSON.stringify(path.join(SRC, 'pki', 'key-pool.ts'))});`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['-e', `${hook}\n${body}`], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

describe('RsaKeyPool', () => {
  it('hands out the planned keys from its workers (RSA 2048, all distinct), then makes more on demand', async () => {
    const pool = new RsaKeyPool(3, { threads: 2 });
    try {
      const keys = await Promise.all([pool.take(), pool.take(), pool.take(), pool.take()]);
      expect(keys.map((k) => `${k.asymmetricKeyType} ${k.asymmetricKeyDetails?.modulusLength}`)).toEqual(Array(4).fill(`rsa ${RSA_BITS}`));
      expect(new Set(keys.map((k) => k.export({ type: 'pkcs8', format: 'der' }).toString('hex'))).size).toBe(4);
      expect(pool.stats).toEqual({ planned: 3, threads: 2, fromWorkers: 3, onDemand: 1 });
    } finally {
      await pool.close();
    }
  });

  it('issues leaves with pooled keys that openssl verifies', async () => {
    const t = new TempDir();
    const pool = new RsaKeyPool(2);
    try {
      const ca = await createCA({ cluster: 'pool', keyType: 'ecdsa' });
      const leaf = await issueLeaf(ca, { commonName: 'tikv', hosts: ['10.0.0.7'], keyType: 'rsa', keyPool: pool });
      expect(pool.stats.fromWorkers).toBe(1);
      expect(leaf.keyPem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
      const crt = t.write('leaf.crt', leaf.certPem);
      expect(openssl(['verify', '-CAfile', t.write('ca.crt', ca.bundlePem), crt]).stdout).toContain(': OK');
      expect(openssl(['x509', '-in', crt, '-noout', '-text']).stdout).toContain('Public-Key: (2048 bit)');
      // An ECDSA leaf never touches the pool.
      await issueLeaf(ca, { commonName: 'pd', keyType: 'ecdsa', keyPool: pool });
      expect(pool.stats.fromWorkers + pool.stats.onDemand).toBe(1);
    } finally {
      await pool.close();
      t.remove();
    }
  });

  it('turns a failing worker into a CertError for every waiting and later take', async () => {
    const pool = new RsaKeyPool(2, { bits: 256 }); // OpenSSL refuses: "key size too small"
    try {
      const waits = [pool.take(), pool.take()];
      for (const w of waits) await expect(w).rejects.toThrow(CertError);
      await expect(pool.take()).rejects.toThrow(/RSA key generation failed in a worker thread: .*key size too small/);
    } finally {
      await pool.close();
    }
  });

  it('close() rejects a waiting take with a CertError', async () => {
    const pool = new RsaKeyPool(1, { threads: 1 });
    const wait = pool.take().then(() => 'key', (e: unknown) => e);
    const wait2 = pool.take(); // beyond the plan: made on demand, unaffected by close
    await pool.close();
    const got = await wait;
    expect(got).toBeInstanceOf(CertError);
    expect(String(got)).toContain('closed before a key was ready');
    expect((await wait2).asymmetricKeyType).toBe('rsa');
    expect(pool.stats.onDemand).toBe(1);
  });

  it('never keeps the process alive: a pool nobody takes from or closes ends with the script', () => {
    // 2000 keys on one thread take minutes anywhere (>= 50 ms each); the script ends after the key in progress.
    const r = inChild(`new RsaKeyPool(2000, { threads: 1 }); setTimeout(() => process.stdout.write('done\\n'), 200);`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('done\n');
    expect(r.code).toBe(0); // null when spawnSync's 60 s timeout had to kill it
    expect(r.ms).toBeLessThan(45_000);
  });

  it('keeps the process alive while someone waits for a key (nothing else holds the event loop)', () => {
    const r = inChild(`new RsaKeyPool(4).take().then((k) => process.stdout.write(k.asymmetricKeyType + ' ' + k.asymmetricKeyDetails.modulusLength + '\\n'));`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('rsa 2048\n');
    expect(r.code).toBe(0);
  });
});
