/** bench/RESULTS.md from the numbers of one `npm run bench`. */
import type { BenchArgs } from './args';
import type { CertRun } from './certs';
import type { OutageBench, OutageRun } from './outage';
import type { ScaleBench, ScaleRun } from './scale';
import type { SshCostRow } from './ssh-cost';
import { distribution, type Distribution } from './analysis';

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

/** Goal of the outage benchmark: outage ≤ GOAL × critical path. */
export const OUTAGE_GOAL = 1.2;

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const ms = (x: number) => `${Math.round(x)} ms`;

function table(head: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>) => `| ${cells.map(String).join(' | ')} |`;
  return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
}

function outageSection(o: OutageBench): string[] {
  const out: string[] = ['## Outage window during `tls enable`', ''];
  out.push(
    'A prober process writes and reads a key through PD and calls TiDB\'s status port every 100 ms; an',
    'interval counts as outage from the first unanswered probe to the next answered one. The critical path',
    'is measured in the same run: for each tier, the slowest single restart (restart issued → instance',
    'healthy again, plus its stop when stopped separately), summed over tiers.',
    '',
  );
  const rows = o.runs.map((r) => [
    r.schedule,
    r.round,
    s(r.wallMs),
    s(r.outage.totalMs),
    r.outage.intervals.length,
    s(r.outage.longestMs),
    s(r.critical.totalMs),
    (r.outage.totalMs / Math.max(1, r.critical.totalMs)).toFixed(2),
  ]);
  out.push(table(['schedule', 'round', 'tls enable wall', 'outage', 'intervals', 'longest', 'critical path', 'outage ÷ critical path'], rows), '');
  const by = (sch: string) => o.runs.filter((r) => r.schedule === sch);
  const med = (runs: OutageRun[], f: (r: OutageRun) => number) => distribution(runs.map(f)).median;
  const tiers = by('tiers');
  const tiup = by('stop-all');
  if (tiers.length) {
    const ratio = med(tiers, (r) => r.outage.totalMs / Math.max(1, r.critical.totalMs));
    out.push(`- tiseal (tiers): median outage ${s(med(tiers, (r) => r.outage.totalMs))}, ${ratio.toFixed(2)} × the critical path: goal ≤ ${OUTAGE_GOAL} × — **${ratio <= OUTAGE_GOAL ? 'met' : 'NOT met'}**.`);
  }
  if (tiers.length && tiup.length) {
    const a = med(tiers, (r) => r.outage.totalMs);
    const b = med(tiup, (r) => r.outage.totalMs);
    out.push(`- TiUP's schedule (stop-all): median outage ${s(b)}, ${med(tiup, (r) => r.outage.totalMs / Math.max(1, r.critical.totalMs)).toFixed(2)} × the critical path.`);
    out.push(`- tiseal ÷ TiUP schedule (median outage): **${(a / Math.max(1, b)).toFixed(2)}**.`);
  }
  const ref = tiers[0] ?? o.runs[0];
  if (ref) {
    out.push('', `Critical path of ${ref.schedule} round ${ref.round}, tier by tier:`, '');
    out.push(table(['tier', 'instances', 'slowest restart', 'on'], ref.critical.tiers.map((t) => [t.tier, t.instances, ms(t.slowest.ms), `${t.slowest.unit} @ ${t.slowest.host}`])), '');
  }
  out.push('Every unanswered interval (offset from the start of the run; steps running at the time):', '');
  const ivRows: Array<Array<string | number>> = [];
  for (const r of o.runs) {
    const t0 = Date.parse(r.stats.startedAt);
    for (const iv of r.outage.intervals) {
      const down = [iv.pdDown ? 'PD' : '', iv.tidbDown ? 'TiDB' : ''].filter(Boolean).join('+');
      ivRows.push([`${r.schedule} #${r.round}`, `${s(iv.from - t0)} → ${s(iv.to - t0)}`, ms(iv.ms), down, iv.steps.join(', '), (iv.firstError ?? '').replace(/\|/g, '/').slice(0, 90)]);
    }
  }
  out.push(ivRows.length ? table(['run', 'when', 'length', 'down', 'steps', 'first error'], ivRows) : '(none)', '');
  const res = Math.max(0, ...o.runs.map((r) => r.outage.resolutionMs));
  out.push(`Prober resolution: the largest gap between two probes was ${ms(res)}.`, '');
  return out;
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
  if (goal) {
    const met = goal.wall.median < SCALE_GOAL.ms;
    const why = goal.cpuMs && goal.machineCpuMs && !met ? ` tiseal's own CPU was ${s(goal.cpuMs.median)} of it; the machine was busy ${s(goal.machineCpuMs.median)} of CPU time on ${sc.cores ?? '?'} cores (see bench/README.md).` : '';
    out.push(`- ${SCALE_GOAL.hosts} hosts at ${width(goal)}: ${s(goal.wall.median)}; goal under ${s(SCALE_GOAL.ms)} — **${met ? 'met' : 'NOT met'}**.${why}`);
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

export function renderResults(r: BenchResults): string {
  const a = r.args;
  const out: string[] = [
    '# tiseal benchmark results',
    '',
    `Generated by \`npm run bench\` on ${r.date.slice(0, 10)} (${r.date}). Do not edit: re-run to update; method and history in bench/README.md.`,
    '',
    `Machine: ${r.machine}`,
    '',
    `Run: parts ${a.only.join(', ')}; ${a.rounds} round(s) per schedule; ${a.leaves} native / ${a.forgeLeaves} forge${a.ecdsaLeaves ? ` / ${a.ecdsaLeaves} ECDSA` : ''} leaves; sizes ${a.sizes.join(', ')} × ${a.repeat}; concurrency ${a.concurrency ?? "tiseal's default"}${a.sweep?.length ? `; sweep ${a.sweep.join(', ')}` : ''}.`,
    '',
  ];
  if (r.partDates) out.push(`Measured: ${PART_ORDER.filter((p) => r.partDates?.[p]).map((p) => `${p} ${r.partDates![p]!.slice(0, 10)}`).join(', ')} (parts re-run with \`--only\` replace theirs).`, '');
  if (r.outage) out.push(...outageSection(r.outage));
  if (r.ssh) out.push(...sshSection(r.ssh));
  if (r.certs) out.push(...certSection(r.certs));
  if (r.scale) out.push(...scaleSection(r.scale));
  return out.join('\n');
}
