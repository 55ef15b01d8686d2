/** bench/RESULTS.md from the numbers of one `npm run bench`. */
import type { BenchArgs } from './args';
import type { CertRun } from './certs';
import type { Convergence, ConvergencePhase, OutageBench, OutageRun } from './outage';
import type { EvictionBench } from './eviction';
import type { ScaleBench, ScaleRun } from './scale';
import type { SshCostRow } from './ssh-cost';
import { distribution, verdict, type Distribution, type GoalVerdict, type PhysicalLimit } from './analysis';

export interface BenchResults {
  date: string;
  machine: string;
  args: BenchArgs;
  outage?: OutageBench;
  ssh?: SshCostRow[];
  certs?: CertRun[];
  scale?: ScaleBench;
  /** When each part was measured, once results of several runs are merged (`--only`). */
  partDates?: Partial<Record<BenchArgs['only'][number], string>>;
}

const PART_ORDER: Array<BenchArgs['only'][number]> = ['outage', 'ssh', 'certs', 'scale'];

/** tiseal's default schedule, judged against the two references of issue #14 §3. */
export const DEFAULT_SCHEDULE = 'overlap';
/** Goals: default schedule's outage ≤ 0.5 × TiUP's (stop-all) and ≤ 1.5 × the physical limit, same run. */
export const GOALS = { vsTiup: 0.5, vsLimit: 1.5 };

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const ms = (x: number) => `${Math.round(x)} ms`;

function table(head: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

const cell = (text: string | undefined, max = 90) => (text ?? '').replace(/\|/g, '/').replace(/\s+/g, ' ').slice(0, max);

function goalLine(label: string, v: GoalVerdict, value: number, ref: number): string {
  const judged = v.met ? '**met**' : `**missed by ${v.missedBy!.toFixed(2)}** (${s(v.missedByMs!)} over)`;
  return `- ${label}: ${s(value)} ÷ ${s(ref)} = **${v.ratio.toFixed(2)}**; goal ≤ ${v.goal} — ${judged}.`;
}

function limitSection(l: PhysicalLimit): string[] {
  const judged = { sql: 'first tick that TiDB answered', 'serving+sql': 'serving again, then the first answered tick', port: 'its port answering' } as const;
  return [
    '### Physical limit (same run, plaintext cluster, no TLS change)',
    '',
    'Each instance restarted once, one at a time (`sudo systemctl restart <unit>`), timed from the stop being issued (the host\'s clock) to the instance being back as the column says; the PD leader last.',
    '',
    table(
      ['instance', 'host', 'back when', 'stop issued → back'],
      l.restarts.map((r) => [`${r.unit}${r.pdLeader ? ' (PD leader)' : ''}`, r.host, judged[r.judged], ms(r.ms)]),
    ),
    '',
    `- One PD leader election (${l.election.pd} on ${l.election.host} stopped → first answered tick): ${ms(l.election.ms)}.`,
    `- **Limit: ${s(l.ms)}** = slowest single restart (${l.slowest.unit} on ${l.slowest.host}, ${ms(l.slowest.ms)}) + one election (${ms(l.election.ms)}).`,
    '',
  ];
}

function convergenceSection(c: Convergence): string[] {
  const ok = c.runs.filter((r) => r.ok).length;
  const failed = c.runs.find((r) => !r.ok);
  const head = failed
    ? `**${ok} of ${c.asked} converged**: run ${failed.run} failed (${cell(failed.failure, 300)})${c.runs.length < c.asked ? `; the ${c.asked - c.runs.length} after it were not run` : ''}.`
    : `**${ok} of ${c.asked} converged.**`;
  const ph = (p?: ConvergencePhase) => (p ? [s(p.wallMs), s(p.outage.totalMs)] : ['-', '-']);
  return [
    `## Convergence: ${c.asked} × \`tls enable\` + \`tls disable\` in a row (tiseal's default schedule)`,
    '',
    'Each command must exit 0 and the cluster answer 10 SQL ticks in a row afterwards.',
    '',
    head,
    '',
    table(['run', 'enable wall', 'enable outage', 'disable wall', 'disable outage', 'result'], c.runs.map((r) => [r.run, ...ph(r.enable), ...ph(r.disable), r.ok ? 'ok' : cell(r.failure)])),
    '',
  ];
}

function outageSection(o: OutageBench): string[] {
  const out: string[] = ['## Outage window during `tls enable`, as a SQL client sees it', ''];
  out.push(
    'A prober process (`bench/sql-tick-prober.ts`) starts a tick every 100 ms; each tick writes a key through every TiDB',
    '(`REPLACE INTO test.kv`) and reads it back (`SELECT`). A tick is answered when any TiDB did both and read what it wrote;',
    'outage runs from the first unanswered tick to the next answered one. Schedules and limit are measured in the same run.',
    '',
  );
  const rows = o.runs.map((r) => [r.schedule, r.round, s(r.wallMs), s(r.outage.totalMs), r.outage.intervals.length, s(r.outage.longestMs), `${r.outage.failedTicks} of ${r.outage.ticks}`]);
  out.push(table(['schedule', 'round', 'tls enable wall', 'outage', 'intervals', 'longest', 'unanswered ticks'], rows), '');
  const by = (sch: string) => o.runs.filter((r) => r.schedule === sch);
  const medianOutage = (runs: OutageRun[]) => distribution(runs.map((r) => r.outage.totalMs)).median;
  const schedules = [...new Set(o.runs.map((r) => r.schedule as string))];
  for (const sch of schedules) out.push(`- ${sch}: median outage ${s(medianOutage(by(sch)))} over ${by(sch).length} round(s).`);
  if (schedules.length) out.push('');
  if (o.limit) out.push(...limitSection(o.limit));
  const def = by(DEFAULT_SCHEDULE);
  const tiup = by('stop-all');
  out.push(`### Goals (${DEFAULT_SCHEDULE}, tiseal's default; medians over rounds)`, '');
  if (!def.length) out.push(`- ${DEFAULT_SCHEDULE} was not measured in this run: no goal judged.`);
  else {
    const d = medianOutage(def);
    if (tiup.length) out.push(goalLine(`${DEFAULT_SCHEDULE} ÷ stop-all (TiUP's schedule)`, verdict(d, medianOutage(tiup), GOALS.vsTiup), d, medianOutage(tiup)));
    else out.push('- stop-all was not measured in this run.');
    if (o.limit) out.push(goalLine(`${DEFAULT_SCHEDULE} ÷ physical limit`, verdict(d, o.limit.ms, GOALS.vsLimit), d, o.limit.ms));
    else out.push('- the physical limit was not measured in this run.');
  }
  out.push('');
  const ref = def[0] ?? o.runs[0];
  if (ref) {
    out.push(`tiseal's own health gate, ${ref.schedule} round ${ref.round}: the slowest restart of each tier (restart issued → healthy, plus its stop when stopped separately):`, '');
    out.push(table(['tier', 'instances', 'slowest restart', 'on'], ref.critical.tiers.map((t) => [t.tier, t.instances, ms(t.slowest.ms), `${t.slowest.unit} @ ${t.slowest.host}`])), '');
  }
  out.push('Every unanswered interval (offset from the start of the run; steps running at the time; what the first unanswered tick got):', '');
  const ivRows: Array<Array<string | number>> = [];
  for (const r of o.runs) {
    const t0 = Date.parse(r.stats.startedAt);
    for (const iv of r.outage.intervals) ivRows.push([`${r.schedule} #${r.round}`, `${s(iv.from - t0)} → ${s(iv.to - t0)}`, ms(iv.ms), iv.ticks ?? '-', iv.steps.join(', '), cell(iv.firstError)]);
  }
  out.push(ivRows.length ? table(['run', 'when', 'length', 'ticks', 'steps', 'first error'], ivRows) : '(none)', '');
  const res = Math.max(0, ...o.runs.map((r) => r.outage.resolutionMs));
  out.push(`Prober resolution: the largest gap between two scheduled ticks was ${ms(res)}. Every tick is in \`bench/results.json\`.`, '');
  if (o.convergence) out.push(...convergenceSection(o.convergence));
  if (o.eviction) out.push(...evictionSection(o.eviction));
  return out;
}

function evictionSection(e: EvictionBench): string[] {
  const w = e.withEviction;
  const rows = w.evictions.map((x) => [`${x.unit} @ ${x.host}`, x.skipped ? `skipped: ${cell(x.skipped, 80)}` : `${x.leadersBefore ?? 0} → ${x.leadersAtRestart ?? 0}`, x.evictMs !== undefined ? ms(x.evictMs) : '-', x.timedOut ? 'yes' : 'no']);
  return [
    '## Rolling store restarts: with and without leader eviction',
    '',
    '`tiseal encrypt enable` restarts every TiKV and TiFlash store one at a time, each after PD\'s evict-leader scheduler emptied it (TiUP\'s PreRestart), with the SQL tick prober running. Without eviction: the same stores restarted one at a time by the physical limit above, in the same run.',
    '',
    `- With eviction: \`encrypt enable\` ${s(w.wallMs)}, **${s(w.outage.totalMs)} of SQL outage** (${w.outage.failedTicks} of ${w.outage.ticks} ticks unanswered, ${w.outage.intervals.length} interval(s)).`,
    `- Without eviction: ${e.withoutEviction.map((r) => `${r.unit} @ ${r.host} ${ms(r.ms)}`).join(', ') || '(no limit measured in this run)'} from stop to the SQL client answered again.`,
    '',
    rows.length ? table(['store', 'leaders before → at restart', 'eviction took', 'timed out'], rows) : '(no eviction recorded)',
    '',
  ];
}

function sshSection(rows: SshCostRow[]): string[] {
  const worst = Math.max(0, ...rows.map((r) => r.maxHandshakesPerHost));
  return [
    '## SSH cost per run (lab)',
    '',
    table(
      ['command', 'wall', 'hosts', 'handshakes', 'max per host', 'commands run', 'Σ round trips', 'Σ handshake time'],
      rows.map((r) => [r.command, s(r.wallMs), r.hosts, r.handshakes, r.maxHandshakesPerHost, r.execs, ms(r.rttTotalMs), ms(r.connectTotalMs)]),
    ),
    '',
    `Handshakes per host per run: at most ${worst} — **${worst === 1 ? 'one connection per host, as required' : 'MORE THAN ONE: connection reuse is broken'}**. Round trips are summed over`,
    'hosts running in parallel, so Σ round trips can exceed the wall time.',
    '',
  ];
}

/** Issue #14 §4: 200 ECDSA leaves in under 2 s. */
export const ECDSA_GOAL = { leaves: 200, ms: 2000 };

function certSection(runs: CertRun[]): string[] {
  const rsa = runs.filter((r) => (r.keyType ?? 'rsa') === 'rsa');
  const native = rsa.find((r) => r.keyGen === 'native' && r.concurrency === 1);
  const forge = rsa.find((r) => r.keyGen === 'forge');
  const pool = rsa.find((r) => r.keyGen === 'pool');
  const ecdsa = runs.find((r) => r.keyType === 'ecdsa');
  const gen = (r: CertRun) => (r.keyGen === 'native' ? "native (Node's crypto)" : r.keyGen === 'pool' ? `worker pool (${r.concurrency} threads)` : 'node-forge (pure JS)');
  const out = [
    '## Certificates: CA + leaves',
    '',
    'Through tiseal\'s own `createCA`/`issueLeaf`; the CA is of the leaves\' key type. The worker pool starts with the CA, as a command starts it before preflight (which it then overlaps; not here).',
    '',
    table(
      ['key', 'key generation', 'at a time', 'leaves', 'CA', 'all leaves', 'per leaf', 'total'],
      runs.map((r) => [(r.keyType ?? 'rsa') === 'rsa' ? 'RSA 2048' : 'ECDSA P-256', gen(r), r.keyGen === 'pool' ? '-' : r.concurrency, r.leaves, ms(r.caMs), s(r.leavesMs), ms(r.perLeafMs), s(r.totalMs)]),
    ),
    '',
  ];
  if (ecdsa) {
    const verdict = ecdsa.leaves === ECDSA_GOAL.leaves ? ` goal under ${s(ECDSA_GOAL.ms)} for ${ECDSA_GOAL.leaves} leaves — **${ecdsa.totalMs < ECDSA_GOAL.ms ? 'met' : 'NOT met'}**.` : ` (the goal, under ${s(ECDSA_GOAL.ms)}, is for ${ECDSA_GOAL.leaves} leaves).`;
    out.push(`- \`--key-type ecdsa\`: CA + ${ecdsa.leaves} leaves in ${s(ecdsa.totalMs)};${verdict}`);
  }
  const wide = rsa.find((r) => r.keyGen === 'native' && r.concurrency > 1);
  if (pool && native) {
    const vsWide = wide ? `; native ${wide.concurrency} at a time (Node's libuv threads, the same cores) took ${(wide.totalMs / pool.totalMs).toFixed(1)} × the pool's time. In a command the pool's gain is that its keys are made while preflight runs, which this does not measure` : '';
    out.push(`- RSA keys from the worker pool (${pool.concurrency} threads): CA + ${pool.leaves} leaves **${(native.totalMs / pool.totalMs).toFixed(1)} ×** faster than native one at a time${vsWide}.`);
  }
  if (native && forge) out.push(`- Per leaf, node-forge's pure-JS generator is **${(forge.perLeafMs / native.perLeafMs).toFixed(1)} ×** slower than native key generation (both one at a time). tiseal uses native.`);
  if (ecdsa || pool || (native && forge)) out.push('');
  return out;
}

/** `tls status` over 200 hosts should take less than this (issue #14 §4). */
export const SCALE_GOAL = { hosts: 200, ms: 3000 };

const mib = (x: number) => `${x.toFixed(1)} MiB`;
const opt = (d: Distribution | undefined, f: (x: number) => string) => (d ? f(d.median) : '-');

function scaleSection(sc: ScaleBench): string[] {
  const width = (r: ScaleRun) => (r.concurrency !== undefined ? String(r.concurrency) : sc.defaultConcurrency !== undefined ? `default (${sc.defaultConcurrency})` : 'default');
  const out = [
    '## Scale: `tls status` fan-out over sshd-only hosts (network namespaces)',
    '',
    `The hosts share this machine's ${sc.cores ?? 'few'} cores with tiseal: *machine CPU* is all the machine did during the run (tiseal, every host's sshd and the commands it runs, anything else), *tiseal CPU* the tiseal process alone. Medians of the repeats.`,
    '',
    ...(sc.labUp ? ['**The lab\'s cluster was up during this part**: its idle load (emulators, Prometheus scraping every 2 s) shared the CPUs, so these times are not comparable with a run without it.', ''] : []),
    table(
      ['hosts', 'concurrency', 'wall (median)', 'min – max', 'per host', 'tiseal CPU', 'machine CPU', 'peak RSS (median)', 'handshakes per host', 'commands run'],
      sc.runs.map((r) => [r.hosts, width(r), ms(r.wall.median), `${ms(r.wall.min)} – ${ms(r.wall.max)}`, ms(r.wall.median / r.hosts), opt(r.cpuMs, ms), opt(r.machineCpuMs, ms), mib(r.peakRssMb.median), r.handshakesPerHost, r.execs]),
    ),
    '',
    `Least-squares fit: wall ≈ ${ms(sc.fit.baseMs)} + ${ms(sc.fit.msPerHost)} × hosts (R² = ${sc.fit.r2.toFixed(3)}): ${sc.fit.r2 >= 0.95 ? 'linear' : 'not clearly linear'}.`,
    '',
  ];
  const sorted = [...sc.runs].sort((a, b) => a.hosts - b.hosts);
  const [lo, hi] = [sorted[0], sorted[sorted.length - 1]];
  if (lo && hi && hi.hosts > lo.hosts) {
    const grow = (hi.peakRssMb.median - lo.peakRssMb.median) / (hi.hosts - lo.hosts);
    out.push(`- Memory: peak RSS ${mib(lo.peakRssMb.median)} at ${lo.hosts} hosts, ${mib(hi.peakRssMb.median)} at ${hi.hosts} (${(hi.peakRssMb.median / lo.peakRssMb.median).toFixed(2)} × for ${(hi.hosts / lo.hosts).toFixed(1)} × the hosts; ${(grow * 1024).toFixed(0)} KiB per extra host).`);
  }
  const goal = sc.runs.find((r) => r.hosts === SCALE_GOAL.hosts);
  const floorAt = (n: number) => sc.floor?.find((f) => f.hosts === n);
  if (goal) {
    const met = goal.wall.median < SCALE_GOAL.ms;
    const why = goal.cpuMs && goal.machineCpuMs && !met ? ` tiseal's own CPU was ${s(goal.cpuMs.median)} of it; the machine was busy ${s(goal.machineCpuMs.median)} of CPU time on ${sc.cores ?? '?'} cores (see bench/README.md).` : '';
    out.push(`- ${SCALE_GOAL.hosts} hosts at ${width(goal)}: ${s(goal.wall.median)}; goal under ${s(SCALE_GOAL.ms)} — **${met ? 'met' : 'NOT met'}**.${why}`);
    const f = floorAt(goal.hosts);
    if (f && !met) {
      out.push(
        f.wall.median >= SCALE_GOAL.ms
          ? `- The SSH floor alone (below) took ${s(f.wall.median)} for ${f.hosts} hosts, machine CPU ${opt(f.machineCpuMs, s)}: on this machine no fan-out that opens an SSH session per host gets under ${s(SCALE_GOAL.ms)}. tiseal took ${(goal.wall.median / f.wall.median).toFixed(2)} × the floor.`
          : `- The SSH floor (below) took ${s(f.wall.median)} for ${f.hosts} hosts, under the goal: the ${s(goal.wall.median - f.wall.median)} above it are tiseal's own work.`,
      );
    }
  }
  if (sc.floor?.length) {
    out.push(
      '',
      'SSH floor, same hosts and width (`bench/ssh-floor.ts`: a Node process with tiseal\'s SSH client opens one connection per host, runs `true`, closes it; nothing else):',
      '',
      table(
        ['hosts', 'concurrency', 'wall (median)', 'min – max', 'client CPU', 'machine CPU', 'tiseal ÷ floor (wall)', 'tiseal − floor (machine CPU)'],
        sc.floor.map((f) => {
          const t = sc.runs.find((r) => r.hosts === f.hosts);
          return [f.hosts, width(f), ms(f.wall.median), `${ms(f.wall.min)} – ${ms(f.wall.max)}`, opt(f.cpuMs, ms), opt(f.machineCpuMs, ms), t ? `${(t.wall.median / f.wall.median).toFixed(2)} ×` : '-', t?.machineCpuMs && f.machineCpuMs ? ms(t.machineCpuMs.median - f.machineCpuMs.median) : '-'];
        }),
      ),
    );
  }
  if (sc.sweep?.length) {
    out.push(
      '',
      `Width sweep, ${sc.sweep[0].hosts} hosts (\`-c N\`):`,
      '',
      table(
        ['concurrency', 'wall (median)', 'min – max', 'tiseal CPU', 'machine CPU', 'peak RSS (median)'],
        sc.sweep.map((r) => [width(r), ms(r.wall.median), `${ms(r.wall.min)} – ${ms(r.wall.max)}`, opt(r.cpuMs, ms), opt(r.machineCpuMs, ms), mib(r.peakRssMb.median)]),
      ),
    );
  }
  out.push('');
  return out;
}

/** A run of some parts over the previous results: the parts not run (and their arguments) are kept. */
export function mergeResults(prev: BenchResults, fresh: BenchResults): BenchResults {
  const only = fresh.args.only;
  const kept = prev.args.only.filter((p) => !only.includes(p));
  if (!kept.length) return fresh;
  const args = { ...fresh.args, only: [...kept, ...only].sort((a, b) => PART_ORDER.indexOf(a) - PART_ORDER.indexOf(b)) };
  if (!only.includes('outage') && !only.includes('ssh')) args.rounds = prev.args.rounds;
  if (!only.includes('outage')) [args.schedules, args.converge] = [prev.args.schedules, prev.args.converge];
  if (!only.includes('certs')) [args.leaves, args.forgeLeaves] = [prev.args.leaves, prev.args.forgeLeaves];
  if (!only.includes('scale')) [args.sizes, args.repeat, args.concurrency, args.sweep] = [prev.args.sizes, prev.args.repeat, prev.args.concurrency, prev.args.sweep];
  const partDates = { ...(prev.partDates ?? Object.fromEntries(prev.args.only.map((p) => [p, prev.date]))), ...Object.fromEntries(only.map((p) => [p, fresh.date])) };
  const out: BenchResults = { ...fresh, args, partDates };
  for (const p of kept) {
    if (p === 'outage') out.outage = prev.outage;
    if (p === 'ssh') out.ssh = prev.ssh;
    if (p === 'certs') out.certs = prev.certs;
    if (p === 'scale') out.scale = prev.scale;
  }
  return out;
}

/** results.json: indented, but one line per SQL tick (thousands of them). */
export function resultsJson(r: BenchResults): string {
  const lines: string[] = [];
  const text = JSON.stringify(
    r,
    (k, v: unknown) => (k === 'ticks' && Array.isArray(v) ? v.map((t) => `\u0000${lines.push(JSON.stringify(t)) - 1}`) : v),
    2,
  );
  return text.replace(/"\\u0000(\d+)"/g, (_, i: string) => lines[Number(i)]) + '\n';
}

export function renderResults(r: BenchResults): string {
  const a = r.args;
  const out: string[] = [
    '# tiseal benchmark results',
    '',
    `Generated by \`npm run bench\` on ${r.date.slice(0, 10)} (${r.date}). Do not edit: re-run to update; method and history in bench/README.md.`,
    '',
    `Machine: ${r.machine}`,
    '',
    `Run: parts ${a.only.join(', ')}; ${a.rounds} round(s) per schedule${a.schedules ? ` (${a.schedules.join(', ')})` : ''}${a.converge ? `; ${a.converge} convergence runs` : ''}; ${a.leaves} native / ${a.forgeLeaves} forge${a.ecdsaLeaves ? ` / ${a.ecdsaLeaves} ECDSA` : ''} leaves; sizes ${a.sizes.join(', ')} × ${a.repeat}; concurrency ${a.concurrency ?? "tiseal's default"}${a.sweep?.length ? `; sweep ${a.sweep.join(', ')}` : ''}.`,
    '',
  ];
  if (r.partDates) out.push(`Measured: ${PART_ORDER.filter((p) => r.partDates?.[p]).map((p) => `${p} ${r.partDates![p]!.slice(0, 10)}`).join(', ')} (parts re-run with \`--only\` replace theirs).`, '');
  if (r.outage) out.push(...outageSection(r.outage));
  if (r.ssh) out.push(...sshSection(r.ssh));
  if (r.certs) out.push(...certSection(r.certs));
  if (r.scale) out.push(...scaleSection(r.scale));
  return out.join('\n');
}
