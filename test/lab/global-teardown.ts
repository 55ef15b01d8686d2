/**
 * jest globalTeardown of the lab project: after all lab test files, take the lab down (nspawn
 * processes, overlays, cgroups, the bridge: exactly what its state file lists), but only when this
 * jest run booted it (test/lab/helpers.ts records that in a marker file): a lab someone else
 * brought up, or a previous run left up, stays up. TISEAL_LAB_KEEP=1 leaves it running anyway.
 */
import * as fs from 'fs';
import { labAvailable, labDown } from '../../lab';
import { resolveOptions } from '../../lab/options';
import { readState } from '../../lab/state';
import { bootMarkerFile } from './helpers';

function bootedByThisRun(file: string): boolean {
  try {
    const m = JSON.parse(fs.readFileSync(file, 'utf8')) as { pids?: number[] };
    return Array.isArray(m.pids) && m.pids.includes(process.pid);
  } catch {
    return false;
  }
}

export default async function globalTeardown(): Promise<void> {
  if (!labAvailable().ok) return;
  const { dir } = resolveOptions();
  const marker = bootMarkerFile(dir);
  if (!readState(dir) || !bootedByThisRun(marker)) return;
  if (process.env.TISEAL_LAB_KEEP === '1') {
    process.stderr.write(`\nTISEAL_LAB_KEEP=1: the lab in ${dir} stays up (npm run lab -- down)\n`);
    return;
  }
  const r = await labDown();
  fs.rmSync(marker, { force: true });
  process.stderr.write(`\nlab down after the tests: ${r.stopped.length} hosts stopped in ${(r.ms / 1000).toFixed(1)} s\n`);
  if (r.problems.length) {
    process.stderr.write(`lab down problems:\n  ${r.problems.join('\n  ')}\n`);
    process.exitCode = 1;
  }
}
