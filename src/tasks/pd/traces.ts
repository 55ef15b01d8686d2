import * as path from 'path';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import type { Executor } from '../../ssh/executor';
import { pdInstances } from '../../topology';
import type { Instance } from '../../topology/types';
import { shq } from '../../util/shell';
import { executorFor, TlsContext } from '../context';

/**
 * What a PD's host tells about tiseal's work on it, with no journal: the names tiseal gives the
 * dirs it leaves next to a PD's data dir, each carrying the run id.
 *  - `<data>.tiseal-removing-<run>`: made before the member is deleted, dropped once the data is aside
 *  - `<data>.tiseal-removed-<run>-<ms>`: the data dir of a member tiseal removed (scale-in)
 *  - `<data>.tiseal-stale-<run>-<ms>`: stale data moved out of the way of a re-join (scale-out)
 * and the run's backups (`<deploy>/backup/tiseal-<run>`).
 *
 * A mark is evidence of a run that did not finish, nothing more: once a run has verified every PD
 * a member again, it closes them (closePdMarksStep: removing marks deleted, the data dirs renamed
 * `<data>.tiseal-old-<kind>-<run>-<ms>`, kept but no longer evidence). So a PD removed by hand
 * after a finished run is never re-added on the strength of an old mark; neither is one whose
 * newest mark is older than the last verified run recorded here (meta.json verifiedAt: marks left
 * by runs from before marks were closed, or a close that was itself cut short).
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

/** When a mark was made: the `-<ms>` of a removed/stale dir, else its run id's UTC timestamp. */
export function markTime(mark: string): Date | undefined {
  const base = path.posix.basename(mark);
  const ms = /\.tiseal-(?:removed|stale)-\d{8}T\d{6}-[0-9a-f]{4}-(\d+)$/.exec(base);
  if (ms) return new Date(Number(ms[1]));
  const id = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})-/.exec(runIdOf(mark) ?? '');
  return id ? new Date(Date.UTC(+id[1], +id[2] - 1, +id[3], +id[4], +id[5], +id[6])) : undefined;
}

/**
 * A PD in the topology that is not a member: did tiseal remove it (and was stopped before
 * re-adding it)? Only a marker tiseal left next to its data dir says so; anything else (removed by
 * hand, a failed scale-out of TiUP, a lost disk) is not tiseal's to repair.
 */
export function judgeRemovedPd(pd: Pick<Instance, 'dataDir'>, t: PdTrace, verifiedAt?: string): RemovedPdVerdict {
  const mark = newestMark(t);
  const at = mark ? markTime(mark) : undefined;
  if (mark && verifiedAt && at && at.getTime() < Date.parse(verifiedAt)) {
    return { byTiseal: false, evidence: `the newest dir a tiseal run left next to its data dir (${mark}) is older than the last verified run recorded on this machine (${verifiedAt}): it was removed since, not by tiseal` };
  }
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

/** One round trip: drop empty removing marks, rename data marks out of the evidence names (no symlink followed, `mv -T` never moves into a dir). */
export function closeMarksScript(pd: Pick<Instance, 'dataDir'>): string {
  return [
    `D=${shq(pd.dataDir!)}`,
    `for p in "$D"${MARKS.removing}*; do if [ -d "$p" ] && [ ! -L "$p" ]; then rmdir "$p"; fi; done`,
    `for p in "$D"${MARKS.removed}* "$D"${MARKS.stale}*; do if [ -d "$p" ] && [ ! -L "$p" ]; then mv -T "$p" "$D.tiseal-old-\${p#"$D".tiseal-}"; fi; done`,
  ].join('; ');
}

/** After every PD is a verified member again: the marks of any run are history (see the top of this file). */
export const closePdMarksStep: Step<TlsContext> = {
  id: 'close-pd-marks',
  title: 'Close the marks tiseal runs left next to PD data dirs (data kept)',
  async decide(ctx) {
    const planned = await Promise.all(
      pdInstances(ctx.topology).map(async (pd) => {
        const exec = await executorFor(ctx, pd);
        const t = await readPdTrace(exec, pd);
        if (t.marks.length === 0) return undefined;
        return {
          title: `${pd.host}: ${t.marks.map((m) => path.posix.basename(m)).join(', ')} (removing marks deleted, data dirs renamed ${path.posix.basename(pd.dataDir!)}.tiseal-old-*)`,
          run: async () => void (await exec.exec(closeMarksScript(pd), { sudo: true })),
        };
      }),
    );
    const actions = planned.filter((a): a is NonNullable<typeof a> => a !== undefined);
    return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('no marks next to the PD data dirs');
  },
};
