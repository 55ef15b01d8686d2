/**
 * RSA 2048 keys for tests that need many keys and do not test how keys are made (each costs
 * 0.1-0.5 s of CPU, several times that with every worker busy). Made on this machine at test run
 * time, never committed: kept in <tmpdir>/tiseal-test-rsa-2048-v1/<n>.pem (dir 0700, files 0600)
 * and shared by the parallel workers and later runs. Within one process every key handed out is
 * distinct: past the cache's size keys are made fresh.
 */
import crypto, { KeyObject } from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import type { KeySource } from '../../src/pki/keys';

export const TEST_KEY_DIR = path.join(os.tmpdir(), 'tiseal-test-rsa-2048-v1');
const CACHED = 64;
const loaded = new Map<number, string>();
let next = 0;

function fresh(): string {
  return crypto.generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x10001 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
}

/** Cached key number `n` (0..63) as PKCS#8 PEM, made and stored the first time any process asks. */
function cached(n: number): string {
  const have = loaded.get(n);
  if (have) return have;
  const file = path.join(TEST_KEY_DIR, `${n}.pem`);
  let pem: string | undefined;
  try {
    pem = fs.readFileSync(file, 'utf8');
    crypto.createPrivateKey(pem); // a torn or foreign file is replaced below
  } catch {
    pem = fresh();
    fs.mkdirSync(TEST_KEY_DIR, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, pem, { mode: 0o600 });
    fs.renameSync(tmp, file); // atomic: a parallel reader sees the old file or this one, whole
  }
  loaded.set(n, pem);
  return pem;
}

/** The next RSA 2048 private key of this process, PKCS#8 PEM (what `openssl req -newkey rsa:2048` writes). */
export function nextTestRsaPem(): string {
  const n = next++;
  return n < CACHED ? cached(n) : fresh();
}

/** A KeySource (what RsaKeyPool is to the product) handing out this process's next keys. */
export function testKeyPool(): KeySource & { taken: number } {
  const pool = {
    taken: 0,
    async take(): Promise<KeyObject> {
      pool.taken++;
      return crypto.createPrivateKey(nextTestRsaPem());
    },
  };
  return pool;
}
