/**
 * `npm run bench`: outage window, SSH cost, certificate issuance and fan-out scale, written to
 * bench/RESULTS.md (and the raw numbers to bench/results.json). Needs root and the lab's packages
 * for the outage and scale parts (as `npm test` does); `--only certs` runs anywhere.
 *
 *   npm run bench -- [--only outage,ssh,certs,scale] [--rounds 2] [--schedules overlap,tiers,stop-all] [--converge 20] [--leaves 200] [--forge-leaves 200] [--ecdsa-leaves 200]
 *                    [--sizes 50,100,200] [--sweep 5,10,25,50,100,200] [--repeat 3] [--concurrency N]
 *                    [--out bench/RESULTS.md]
 *
 * With --only, the parts not run are kept from the previous bench/results.json.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labAvailable, labDown, labStatus } from '../lab';
import { parseArgs } from './args';
import { benchCerts } from './certs';
import { netnsAvailable } from './netns-hosts';
import { benchOutage } from './outage';
import { mergeResults, renderResults, resultsJson, type BenchResults } from './report';
import { benchScale } from './scale';
import { benchSshCommands } from './ssh-cost';

export function machineLine(): string {
  const cpus = os.cpus();
  return `${os.type()} ${os.release()} ${os.arch()}, ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node.js ${process.version}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (m: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-bench-'));
  const results: BenchResults = { date: new Date().toISOString(), machine: machineLine(), args };
  const needsLab = args.only.includes('outage') || args.only.includes('ssh');
  if (needsLab) {
    const lab = labAvailable();
    if (!lab.ok) throw new Error(`the outage and SSH benchmarks need the lab: ${lab.reason}`);
  }
  if (args.only.includes('scale')) {
    const ns = netnsAvailable();
    if (!ns.ok) throw new Error(`the scale benchmark needs network namespaces: ${ns.reason}`);
  }
  if (needsLab) {
    const wasUp = (await labStatus()).hosts.some((h) => h.running);
    try {
      const outage = args.only.includes('outage');
      const o = await benchOutage({ rounds: outage ? args.rounds : 1, schedules: args.schedules, limit: outage, converge: outage ? args.converge : 0, eviction: outage, workDir: work, log });
      if (outage) results.outage = { runs: o.runs, disables: o.disables, limit: o.limit, convergence: o.convergence, eviction: o.eviction };
      results.ssh = await benchSshCommands({ info: o.info, enableRuns: o.runs, disableRuns: o.disables, workDir: work, log });
    } finally {
      // Down before the other parts, which would otherwise share the CPUs with an idle cluster.
      if (!wasUp && !args.keepLab) {
        log('lab: down (the benchmark booted it)');
        await labDown({ log });
      }
    }
  }
  if (args.only.includes('certs')) results.certs = await benchCerts({ leaves: args.leaves, forgeLeaves: args.forgeLeaves, ecdsaLeaves: args.ecdsaLeaves, concurrency: 8, log });
  if (args.only.includes('scale')) {
    // A lab left up (--keep-lab, or up before the bench) shares the CPUs with every host's sshd: say so in the report.
    const labUp = labAvailable().ok && (await labStatus()).hosts.some((h) => h.running);
    results.scale = { ...(await benchScale({ sizes: args.sizes, repeat: args.repeat, concurrency: args.concurrency, sweep: args.sweep, workDir: work, log })), labUp };
  }
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  const json = path.join(path.dirname(args.out), 'results.json');
  const merged = fs.existsSync(json) ? mergeResults(JSON.parse(fs.readFileSync(json, 'utf8')) as BenchResults, results) : results;
  fs.writeFileSync(json, resultsJson(merged));
  fs.writeFileSync(args.out, renderResults(merged));
  fs.rmSync(work, { recursive: true, force: true });
  log(`wrote ${path.relative(process.cwd(), args.out)}`);
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
