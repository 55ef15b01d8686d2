import * as path from 'path';
import type { Executor } from '../ssh/executor';
import type { Instance } from '../topology/types';
import { shq } from '../util/shell';

/**
 * What a PD's host tells about tiseal's work on it, with no journal: the names tiseal gives the
 * dirs it leaves next to a PD's data dir, each carrying the run id.
 *  - `<data>.tiseal-removing-<run>`: made before the member is deleted, dropped once the data is aside
 *  - `<data>.tiseal-removed-<run>-<ms>`: the data dir of a member tiseal removed (scale-in)
 *  - `<data>.tiseal-stale-<run>-<ms>`: stale data moved out of the way of a re-join (scale-out)
 * and the run's backups (`<deploy>/backup/tiseal-<run>`).
 */
export const MARKS = { removing: '.tiseal-removing-', removed: '.tiseal-removed-', stale: '.tiseal-stale-' } as const;
const RUN_ID = /\.tiseal-(?:removing|removed|stale)-(\d{8}T\d{6}-[0-9a-f]{4})/;

export interface PdTrace {
  /** Dirs next to the data dir named by a tiseal run (any of MARKS), sorted. */
  marks: string[];
  /** The data dir holds something. */
  hasData: boolean;
  /** `<deploy>/backup/tiseal-<run>` dirs. */
  backups: string[];
}

/** One read-only round trip: marker dirs (not symlinks), whether the data dir holds data, backup dirs. */
export function pdTraceScript(pd: Pick<Instance, 'dataDir' | 'deployDir'>): string {
  const d = shq(pd.dataDir!);
  const b = shq(path.posix.join(pd.deployDir, 'backup'));
  return [
    `for p in ${d}${MARKS.removing}* ${d}${MARKS.removed}* ${d}${MARKS.stale}*; do if [ -d "$p" ] && [ ! -L "$p" ]; then echo "mark $p"; fi; done`,
    `if [ -d ${d} ] && [ ! -L ${d} ] && [ -n "$(ls -A ${d})" ]; then echo data; fi`,
    `for p in ${b}/tiseal-*; do if [ -d "$p" ] && [ ! -L "$p" ]; then echo "backup $p"; fi; done`,
  ].join('; ');
}

export function parsePdTrace(stdout: string): PdTrace {
  const lines = stdout.split('\n').map((l) => l.trim());
  return {
    marks: lines.filter((l) => l.startsWith('mark ')).map((l) => l.slice(5)).sort(),
    hasData: lines.includes('data'),
    backups: lines.filter((l) => l.startsWith('backup ')).map((l) => l.slice(7)).sort(),
  };
}

export async function readPdTrace(exec: Executor, pd: Instance): Promise<PdTrace> {
  return parsePdTrace((await exec.exec(pdTraceScript(pd), { sudo: true, allowFailure: true })).stdout);
}

export const runIdOf = (mark: string): string | undefined => RUN_ID.exec(path.posix.basename(mark))?.[1];

/** Run ids sort by time (they start with the UTC timestamp): the newest mark is the last run that touched this PD. */
export function newestMark(t: PdTrace): string | undefined {
  return [...t.marks].sort((a, b) => (runIdOf(a) ?? '').localeCompare(runIdOf(b) ?? '')).pop();
}

export type RemovedPdVerdict = { byTiseal: true; runId?: string; evidence: string } | { byTiseal: false; evidence: string };

/**
 * A PD in the topology that is not a member: did tiseal remove it (and was stopped before
 * re-adding it)? Only a marker tiseal left next to its data dir says so; anything else (removed by
 * hand, a failed scale-out of TiUP, a lost disk) is not tiseal's to repair.
 */
export function judgeRemovedPd(pd: Pick<Instance, 'dataDir'>, t: PdTrace): RemovedPdVerdict {
  const mark = newestMark(t);
  if (mark) {
    const runId = runIdOf(mark);
    const what = mark.includes(MARKS.removing) ? 'was being removed by' : mark.includes(MARKS.stale) ? 'was being re-added by' : 'was removed by';
    return { byTiseal: true, runId, evidence: `it ${what} tiseal run ${runId ?? '?'} (${mark} on the host)` };
  }
  return {
    byTiseal: false,
    evidence: `no dir tiseal leaves when it removes a PD (${pd.dataDir}${MARKS.removed}<run>-*) is on the host, and ${pd.dataDir} ${t.hasData ? 'holds data' : 'is empty or missing'}`,
  };
}
