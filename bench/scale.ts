/**
 * Fan-out at scale: `tiseal tls status` over 50, 100, 200 … sshd-only hosts (netns-hosts.ts) at
 * tiseal's read-only default concurrency, then the largest size at each width of a sweep. Every host
 * carries a TiKV config (and host 1 a PD one) under its deploy dir, so status reads a real file over
 * SSH and probes ports that refuse, as on a stopped cluster.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { repoRoot } from '../lab/options';
import { envWithoutTiseal } from '../lab/tiseal-run';
import type { RunStatsReport } from '../src/util/run-stats';
import { distribution, linearFit, type Distribution } from './analysis';
import { netnsUp } from './netns-hosts';
import { READ_CONCURRENCY } from '../src/util/concurrency';
import type { FloorConfig, FloorReport } from './ssh-floor';

/** Busy CPU time of the whole machine so far, ms (/proc/stat: user, nice, system, irq, softirq). */
function machineBusyMs(): number {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].split(/\s+/).slice(1).map(Number);
  return ((f[0] + f[1] + f[2] + f[5] + f[6]) * 1000) / 100; // USER_HZ is 100 on Linux
}

export interface ScaleRun {
  hosts: number;
  /** The -c given; undefined: tiseal's own default for read-only verbs. */
  concurrency?: number;
  /** Spawn to exit, as an operator sees it (includes Node's start-up). */
  wall: Distribution;
  /** maxRSS of the tiseal process, MiB. */
  peakRssMb: Distribution;
  /** CPU time of the tiseal process (user + system), ms. */
  cpuMs?: Distribution;
  /** CPU time of the whole machine during the run, ms: tiseal, the hosts' sshd (same cores), anything else. */
  machineCpuMs?: Distribution;
  handshakesPerHost: number;
  execs: number;
}

export interface ScaleBench {
  /** Each size at the default width (or the one given). */
  runs: ScaleRun[];
  /** The largest size at each width. */
  sweep?: ScaleRun[];
  /** Each size at the same width: connect, `true`, close, nothing else (ssh-floor.ts). */
  floor?: ScaleRun[];
  /** tiseal's read-only default width when the bench ran (the runs without -c). */
  defaultConcurrency?: number;
  /** CPUs of the machine, shared by tiseal and every host. */
  cores?: number;
  /** The lab's cluster was running during this part (its idle load shared the CPUs). */
  labUp?: boolean;
  fit: { msPerHost: number; baseMs: number; r2: number };
}

function writeTopology(file: string, ips: string[], deployDir: string): void {
  const lines = [
    '# written by the scale benchmark: sshd-only hosts in network namespaces',
    'global:',
    '  user: "root"',
    '  ssh_port: 22',
    `  deploy_dir: "${deployDir}"`,
    `  data_dir: "${deployDir}/data"`,
    'pd_servers:',
    `  - host: ${ips[0]}`,
    'tikv_servers:',
    ...ips.map((ip) => `  - host: ${ip}`),
    '',
  ];
  fs.writeFileSync(file, lines.join('\n'));
}

function seedHost(hostDir: string, withPd: boolean): void {
  const tikv = path.join(hostDir, 'tikv-20160', 'conf');
  fs.mkdirSync(tikv, { recursive: true });
  fs.writeFileSync(path.join(tikv, 'tikv.toml'), '[storage]\nreserve-space = "0MB"\n\n[security]\n');
  if (withPd) {
    const pd = path.join(hostDir, 'pd-2379', 'conf');
    fs.mkdirSync(pd, { recursive: true });
    fs.writeFileSync(path.join(pd, 'pd.toml'), '[replication]\nmax-replicas = 3\n');
  }
}

/**
 * `node <args>`, timed from spawn to exit (Node's start-up included, as an operator sees it);
 * resolves once its output has been read to the end.
 */
function timedNode(args: string[], o: { env?: NodeJS.ProcessEnv; stdout: 'pipe' | 'ignore' }): Promise<{ wallMs: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { env: o.env, stdio: ['ignore', o.stdout, 'pipe'] });
    let wallMs = 0;
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', () => (wallMs = performance.now() - t0));
    child.on('close', (code) => resolve({ wallMs, code, stdout, stderr }));
  });
}

async function runStatus(args: string[], statsFile: string): Promise<{ wallMs: number; stats: RunStatsReport }> {
  const r = await timedNode([path.join(repoRoot(), 'bin', 'tiseal.js'), 'tls', 'status', ...args, '--json', '--stats-file', statsFile], { env: envWithoutTiseal(), stdout: 'ignore' });
  if (r.code !== 0 && r.code !== 1 && r.code !== 3) throw new Error(`tiseal tls status exited ${r.code}: ${r.stderr.trim()}`);
  return { wallMs: r.wallMs, stats: JSON.parse(fs.readFileSync(statsFile, 'utf8')) as RunStatsReport };
}

async function runFloor(cfg: FloorConfig): Promise<{ wallMs: number; report: FloorReport }> {
  const r = await timedNode([path.join(repoRoot(), 'dist', 'bench', 'ssh-floor.js'), JSON.stringify(cfg)], { stdout: 'pipe' });
  if (r.code !== 0) throw new Error(`ssh floor exited ${r.code}: ${r.stderr.trim()}`);
  return { wallMs: r.wallMs, report: JSON.parse(r.stdout) as FloorReport };
}

/** `repeat` samples of one measured run: wall, peak RSS and CPU of the process, and the machine's busy CPU around it. */
async function sampled(repeat: number, run: (r: number) => Promise<{ wallMs: number; rssMb: number; cpuMs: number }>): Promise<Pick<ScaleRun, 'wall' | 'peakRssMb' | 'cpuMs' | 'machineCpuMs'>> {
  const walls: number[] = [];
  const rss: number[] = [];
  const cpu: number[] = [];
  const machine: number[] = [];
  for (let r = 0; r < repeat; r++) {
    const busy0 = machineBusyMs();
    const s = await run(r);
    machine.push(machineBusyMs() - busy0);
    walls.push(s.wallMs);
    rss.push(s.rssMb);
    cpu.push(s.cpuMs);
  }
  return { wall: distribution(walls), peakRssMb: distribution(rss), cpuMs: distribution(cpu), machineCpuMs: distribution(machine) };
}

export async function benchScale(o: { sizes: number[]; repeat: number; concurrency?: number; sweep?: number[]; workDir: string; log: (m: string) => void }): Promise<ScaleBench> {
  const max = Math.max(...o.sizes);
  o.log(`scale: ${max} sshd hosts in network namespaces`);
  const hosts = await netnsUp(max, path.join(o.workDir, 'netns'));
  try {
    hosts.hostDirs.forEach((d, i) => seedHost(d, i === 0));
    const measure = async (n: number, concurrency: number | undefined): Promise<ScaleRun> => {
      const topo = path.join(o.workDir, `scale-${n}.yaml`);
      writeTopology(topo, hosts.ips.slice(0, n), hosts.deployDir);
      const args = [topo, '-i', hosts.identityFile, '--known-hosts', hosts.knownHostsFile, '--state-dir', path.join(o.workDir, 'state'), ...(concurrency ? ['-c', String(concurrency)] : [])];
      let last: RunStatsReport | undefined;
      await runStatus(args, path.join(o.workDir, `warmup.json`)); // page cache, JIT of the first run
      const samples = await sampled(o.repeat, async (r) => {
        const { wallMs, stats } = await runStatus(args, path.join(o.workDir, `scale-${n}-${r}.json`));
        last = stats;
        return { wallMs, rssMb: stats.maxRssKb / 1024, cpuMs: stats.cpuUserMs + stats.cpuSystemMs };
      });
      const hostsSeen = last!.ssh.perHost.filter((h) => !h.jump);
      if (hostsSeen.length !== n) throw new Error(`tls status reached ${hostsSeen.length} of ${n} hosts`);
      const run: ScaleRun = { hosts: n, concurrency, ...samples, handshakesPerHost: last!.ssh.maxHandshakesPerHost, execs: last!.ssh.execs };
      o.log(`scale: ${n} hosts at -c ${concurrency ?? 'default'}: median ${Math.round(run.wall.median)} ms, CPU ${Math.round(run.cpuMs!.median)} ms (machine ${Math.round(run.machineCpuMs!.median)} ms), peak RSS ${run.peakRssMb.median.toFixed(1)} MiB`);
      return run;
    };
    const floorOf = async (n: number, concurrency: number): Promise<ScaleRun> => {
      const cfg: FloorConfig = { ips: hosts.ips.slice(0, n), user: 'root', identityFile: hosts.identityFile, knownHostsFile: hosts.knownHostsFile, concurrency };
      const samples = await sampled(o.repeat, async () => {
        const { wallMs, report } = await runFloor(cfg);
        return { wallMs, rssMb: report.maxRssKb / 1024, cpuMs: report.cpuMs };
      });
      const run: ScaleRun = { hosts: n, concurrency, ...samples, handshakesPerHost: 1, execs: n };
      o.log(`scale: SSH floor, ${n} hosts at -c ${concurrency}: median ${Math.round(run.wall.median)} ms (machine ${Math.round(run.machineCpuMs!.median)} ms)`);
      return run;
    };
    const runs: ScaleRun[] = [];
    const floor: ScaleRun[] = [];
    for (const n of o.sizes) {
      runs.push(await measure(n, o.concurrency));
      floor.push(await floorOf(n, o.concurrency ?? READ_CONCURRENCY));
    }
    const sweep: ScaleRun[] = [];
    for (const c of o.sweep ?? []) sweep.push(await measure(max, c));
    const fit = linearFit(runs.map((r) => ({ x: r.hosts, y: r.wall.median })));
    return { runs, floor, ...(sweep.length ? { sweep } : {}), defaultConcurrency: READ_CONCURRENCY, cores: os.cpus().length, fit: { msPerHost: fit.slope, baseMs: fit.intercept, r2: fit.r2 } };
  } finally {
    await hosts.down();
  }
}
