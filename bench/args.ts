/** The command line of `npm run bench` (see bench/run.ts); shared with the report, which prints it. */
import * as path from 'path';
import { repoRoot } from '../lab/options';

const PARTS = ['outage', 'ssh', 'certs', 'scale'] as const;
/** tiseal's `--schedule` values: overlap (its default), tiers, and stop-all (TiUP's). */
export const SCHEDULES = ['overlap', 'tiers', 'stop-all'] as const;
export type Schedule = (typeof SCHEDULES)[number];
type Part = (typeof PARTS)[number];

export interface BenchArgs {
  only: Part[];
  rounds: number;
  /** Restart schedules measured each round, in this order. */
  schedules: Schedule[];
  /** enable + disable runs in a row with the default schedule (0: none). */
  converge: number;
  leaves: number;
  forgeLeaves: number;
  /** ECDSA leaves: the goal is stated for 200, so this stays 200 when --leaves is small. */
  ecdsaLeaves: number;
  sizes: number[];
  repeat: number;
  /** -c for the sizes; undefined: tiseal's own read-only default. */
  concurrency?: number;
  /** Widths tried at the largest size. */
  sweep: number[];
  out: string;
  keepLab: boolean;
}

export function parseArgs(argv: string[]): BenchArgs {
  const a: BenchArgs = {
    only: [...PARTS],
    rounds: 2,
    schedules: [...SCHEDULES],
    converge: 20,
    leaves: 200,
    forgeLeaves: 200,
    ecdsaLeaves: 200,
    sizes: [50, 100, 200],
    repeat: 3,
    sweep: [5, 10, 25, 50, 100, 200],
    out: path.join(repoRoot(), 'bench', 'RESULTS.md'),
    keepLab: false,
  };
  const int = (flag: string, v: string | undefined) => {
    if (!v || !/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${flag} wants a positive integer, got '${v ?? ''}'`);
    return Number(v);
  };
  let converge: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i];
    const v = () => argv[++i];
    if (f === '--only') {
      const parts = (v() ?? '').split(',').filter(Boolean);
      const bad = parts.filter((p) => !PARTS.includes(p as Part));
      if (bad.length || !parts.length) throw new Error(`--only takes ${PARTS.join(',')}; got '${parts.join(',')}'`);
      a.only = parts as Part[];
    } else if (f === '--rounds') a.rounds = int(f, v());
    else if (f === '--schedules') {
      const list = (v() ?? '').split(',').filter(Boolean);
      const bad = list.filter((x) => !SCHEDULES.includes(x as Schedule));
      if (bad.length || !list.length) throw new Error(`--schedules takes ${SCHEDULES.join(',')}; got '${list.join(',')}'`);
      a.schedules = list as Schedule[];
    } else if (f === '--converge') {
      const c = v();
      if (!c || !/^\d+$/.test(c)) throw new Error(`--converge wants a number of runs (0 for none), got '${c ?? ''}'`);
      converge = Number(c);
    }
    else if (f === '--leaves') a.leaves = int(f, v());
    else if (f === '--forge-leaves') a.forgeLeaves = int(f, v());
    else if (f === '--ecdsa-leaves') a.ecdsaLeaves = int(f, v());
    else if (f === '--sizes') a.sizes = (v() ?? '').split(',').map((s) => int(f, s));
    else if (f === '--repeat') a.repeat = int(f, v());
    else if (f === '--concurrency') a.concurrency = int(f, v());
    else if (f === '--sweep') a.sweep = (v() ?? '').split(',').filter(Boolean).map((s) => int(f, s));
    else if (f === '--out') a.out = path.resolve(v() ?? '');
    else if (f === '--keep-lab') a.keepLab = true;
    else throw new Error(`unknown flag '${f}' (see bench/run.ts)`);
  }
  // A full run proves convergence; a run of some parts does so only when asked.
  a.converge = converge ?? (argv.includes('--only') ? 0 : a.converge);
  return a;
}
