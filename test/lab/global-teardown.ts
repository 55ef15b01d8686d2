/**
 * jest globalTeardown of the lab project: after all lab test files, take the lab down (nspawn
 * processes, overlays, cgroups, the bridge: exactly what its state file lists). TISEAL_LAB_KEEP=1
 * leaves it running for inspection.
 */
import { labAvailable, labDown } from '../../lab';
import { resolveOptions } from '../../lab/options';
import { readState } from '../../lab/state';

export default async function globalTeardown(): Promise<void> {
  if (!labAvailable().ok) return;
  const { dir } = resolveOptions();
  if (!readState(dir)) return;
  if (process.env.TISEAL_LAB_KEEP === '1') {
    process.stderr.write(`\nTISEAL_LAB_KEEP=1: the lab in ${dir} stays up (npm run lab -- down)\n`);
    return;
  }
  const r = await labDown();
  process.stderr.write(`\nlab down after the tests: ${r.stopped.length} hosts stopped in ${(r.ms / 1000).toFixed(1)} s\n`);
  if (r.problems.length) {
    process.stderr.write(`lab down problems:\n  ${r.problems.join('\n  ')}\n`);
    process.exitCode = 1;
  }
}
