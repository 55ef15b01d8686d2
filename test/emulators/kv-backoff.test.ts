/**
 * The TiDB emulator's backoff budget for a test.kv statement is client-go's 20 s
 * (PrewriteMaxBackoff / getMaxBackoff); TISEAL_EMULATOR_KV_BACKOFF_MS shortens it for tests that
 * only need it spent. The lab never sets it.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';
import { MAX_BACKOFF_MS, maxBackoffMs } from '../../lab/emulators/tidb/kv-route';

test('20 s unless TISEAL_EMULATOR_KV_BACKOFF_MS says otherwise', () => {
  expect(MAX_BACKOFF_MS).toBe(20000);
  expect(maxBackoffMs({})).toBe(20000);
  expect(maxBackoffMs({ TISEAL_EMULATOR_KV_BACKOFF_MS: '' })).toBe(20000);
  expect(maxBackoffMs({ TISEAL_EMULATOR_KV_BACKOFF_MS: 'x' })).toBe(20000);
  expect(maxBackoffMs({ TISEAL_EMULATOR_KV_BACKOFF_MS: '0' })).toBe(20000);
  expect(maxBackoffMs({ TISEAL_EMULATOR_KV_BACKOFF_MS: '4000' })).toBe(4000);
});

test('nothing under lab/ or src/ sets it', () => {
  const root = path.join(__dirname, '..', '..');
  const hits = execFileSync('git', ['grep', '-l', 'TISEAL_EMULATOR_KV_BACKOFF_MS', '--', 'lab', 'src', 'bench', 'scripts'], { cwd: root, encoding: 'utf8' }).split('\n').filter(Boolean);
  expect(hits.sort()).toEqual(['lab/emulators/README.md', 'lab/emulators/tidb/kv-route.ts']);
});
