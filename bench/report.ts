/** bench/RESULTS.md from the numbers of one `npm run bench`. */
import type { BenchArgs } from './args';
import type { CertRun } from './certs';
import type { OutageBench, OutageRun } from './outage';
import type { ScaleBench } from './scale';
import type { SshCostRow } from './ssh-cost';
import { distribution } from './analysis';

export interface BenchResults {
  date: string;
  machine: string;
  args: BenchArgs;
  outage?: OutageBench;
  ssh?: SshCostRow[];
  certs?: CertRun[];
  scale?: ScaleBench;
}

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

function certSection(runs: CertRun[]): string[] {
  const native = runs.find((r) => r.keyGen === 'native' && r.concurrency === 1);
  const forge = runs.find((r) => r.keyGen === 'forge');
  const out = [
    '## Certificates: CA + leaves (RSA 2048)',
    '',
    table(
      ['key generation', 'at a time', 'leaves', 'CA', 'all leaves', 'per leaf', 'total'],
      runs.map((r) => [r.keyGen === 'native' ? "native (Node's crypto)" : 'node-forge (pure JS)', r.concurrency, r.leaves, ms(r.caMs), s(r.leavesMs), ms(r.perLeafMs), s(r.totalMs)]),
    ),
    '',
  ];
  if (native && forge) out.push(`Per leaf, node-forge's pure-JS generator is **${(forge.perLeafMs / native.perLeafMs).toFixed(1)} ×** slower than native key generation (both one at a time). tiseal uses native.`, '');
  return out;
}

function scaleSection(sc: ScaleBench): string[] {
  return [
    '## Scale: `tls status` fan-out over sshd-only hosts (network namespaces)',
    '',
    table(
      ['hosts', 'concurrency', 'wall (median)', 'min – max', 'per host', 'peak RSS (median)', 'handshakes per host', 'commands run'],
      sc.runs.map((r) => [r.hosts, r.concurrency, ms(r.wall.median), `${ms(r.wall.min)} – ${ms(r.wall.max)}`, ms(r.wall.median / r.hosts), `${r.peakRssMb.median.toFixed(1)} MiB`, r.handshakesPerHost, r.execs]),
    ),
    '',
    `Least-squares fit: wall ≈ ${ms(sc.fit.baseMs)} + ${ms(sc.fit.msPerHost)} × hosts (R² = ${sc.fit.r2.toFixed(3)}): ${sc.fit.r2 >= 0.95 ? 'linear' : 'not clearly linear'} at fixed concurrency.`,
    '',
  ];
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
    `Run: parts ${a.only.join(', ')}; ${a.rounds} round(s) per schedule; ${a.leaves} native / ${a.forgeLeaves} forge leaves; sizes ${a.sizes.join(', ')} × ${a.repeat}; concurrency ${a.concurrency}.`,
    '',
  ];
  if (r.outage) out.push(...outageSection(r.outage));
  if (r.ssh) out.push(...sshSection(r.ssh));
  if (r.certs) out.push(...certSection(r.certs));
  if (r.scale) out.push(...scaleSection(r.scale));
  return out.join('\n');
}
