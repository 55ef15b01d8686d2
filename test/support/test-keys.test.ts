import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { nextTestRsaPem, TEST_KEY_DIR, testKeyPool } from './test-keys';

test('test keys: RSA 2048 PKCS#8, distinct within the process, stored 0600 under a 0700 temp dir', async () => {
  const pems = [nextTestRsaPem(), nextTestRsaPem()];
  expect(pems[0]).not.toBe(pems[1]);
  for (const pem of pems) {
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(crypto.createPrivateKey(pem).asymmetricKeyDetails?.modulusLength).toBe(2048);
  }
  expect(fs.statSync(TEST_KEY_DIR).mode & 0o777).toBe(0o700);
  for (const f of fs.readdirSync(TEST_KEY_DIR).filter((x) => x.endsWith('.pem'))) expect(fs.statSync(path.join(TEST_KEY_DIR, f)).mode & 0o777).toBe(0o600);
  const pool = testKeyPool();
  const [a, b] = [await pool.take(), await pool.take()];
  expect(a.export({ type: 'pkcs8', format: 'pem' })).not.toBe(b.export({ type: 'pkcs8', format: 'pem' }));
  expect(pool.taken).toBe(2);
});
