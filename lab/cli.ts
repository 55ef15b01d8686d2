/**
 * `npm run lab -- up|status|reset|down|info`: the tiseal test lab (systemd-nspawn hosts running a
 * TiUP-style plaintext cluster of emulated components). See lab/README.md.
 */
import { Command, CommanderError, Option } from 'commander';
import { TisealError } from '../src/errors';
import { labDeploy, labDown, labInfo, labReset, labStatus, labUp, LabStatus } from './index';
import type { LabOptions } from './options';

const secs = (ms?: number): string => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

function progress(msg: string): void {
  process.stderr.write(`[lab ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function common(cmd: Command): Command {
  return cmd
    .addOption(new Option('--dir <dir>', 'lab directory (default <repo>/.lab/default)').env('TISEAL_LAB_DIR'))
    .addOption(new Option('--subnet <cidr>', 'lab subnet').env('TISEAL_LAB_SUBNET'))
    .addOption(new Option('--bridge <name>', 'bridge device').env('TISEAL_LAB_BRIDGE'))
    .addOption(new Option('--emulated-version <v>', 'version the emulators report').env('TISEAL_LAB_VERSION'))
    .addOption(new Option('--json', 'print machine-readable JSON'));
}

function labOptions(f: Record<string, unknown>, quiet: boolean): LabOptions {
  return {
    dir: f.dir as string | undefined,
    topology: f.topology as string | undefined,
    subnet: f.subnet as string | undefined,
    bridge: f.bridge as string | undefined,
    version: f.emulatedVersion as string | undefined,
    log: quiet ? undefined : progress,
  };
}

function printStatus(s: LabStatus): void {
  if (!s.hosts.length) {
    console.log(`lab ${s.dir}: down`);
    return;
  }
  console.log(`lab ${s.dir}: ${s.up ? 'up' : 'NOT fully up'} (bridge ${s.bridge}, ${s.subnet})`);
  for (const h of s.hosts) {
    const units = Object.entries(h.units)
      .map(([u, st]) => `${u}=${st}`)
      .join(' ');
    console.log(`  ${h.host.padEnd(15)} ${h.hostname.padEnd(18)} ${h.running ? `running pid ${h.pid}` : 'stopped'}${h.running ? (h.ssh ? ', ssh ok' : `, ssh FAILED: ${h.error ?? ''}`) : ''}${units ? `  ${units}` : ''}`);
  }
  const c = s.cluster;
  if (!c) return;
  console.log(`  PD members: ${c.pd.members.map((m) => `${m.name}${m.name === c.pd.leader ? ' (leader)' : ''} ${m.peerUrls.join(',')}`).join('; ') || c.pd.error}`);
  console.log(`  stores: ${c.stores.map((x) => `${x.address} ${x.state}`).join('; ') || '-'}`);
  console.log(`  TiDB: ${c.tidb.map((x) => `${x.address} ${x.ok ? 'ok' : x.error}`).join('; ') || '-'}   TiCDC: ${c.cdc.map((x) => `${x.address} ${x.ok ? 'ok' : x.error}`).join('; ') || '-'}`);
  console.log(`  cluster: ${c.healthy ? 'healthy' : `UNHEALTHY: ${c.problems.join('; ')}`}`);
}

export function buildLabProgram(): Command {
  const program = new Command('lab').description('tiseal test lab: real Debian hosts (systemd-nspawn) with a TiUP-style plaintext cluster').showSuggestionAfterError(true);

  common(program.command('up').description('boot the hosts (reusing running ones) and deploy the plaintext cluster'))
    .addOption(new Option('--topology <file>', 'TiUP topology (default lab/topologies/default.yaml)'))
    .action(async (f: Record<string, unknown>) => {
      const r = await labUp(labOptions(f, Boolean(f.json)));
      if (f.json) return console.log(JSON.stringify(r, null, 2));
      console.log(`lab up: ${r.hosts.length} hosts (${r.booted.length} booted, ${r.reused.length} reused), cluster ${r.deployed ? 'deployed' : 'already healthy'}`);
      const t = r.timings;
      console.log(`  timings: rootfs ${t.rootfsBuilt ? `built ${secs(t.rootfsMs)}` : 'cached'}, boot ${secs(t.bootMs)}, deploy ${secs(t.deployMs)}, start ${secs(t.startMs)}, total ${secs(t.totalMs)}`);
      console.log(`  topology ${r.topologyFile}\n  ssh -i ${r.identityFile} -o UserKnownHostsFile=${r.knownHostsFile} ${r.user}@${r.hosts[0]}\n  env: set -a; . ${r.envFile}; set +a`);
    });

  common(program.command('status').description('hosts, units, PD members, stores')).action(async (f: Record<string, unknown>) => {
    const s = await labStatus(labOptions(f, true));
    if (f.json) console.log(JSON.stringify(s, null, 2));
    else printStatus(s);
    process.exitCode = s.up && (s.cluster?.healthy ?? false) ? 0 : 3;
  });

  common(program.command('reset').description('wipe data and redeploy a fresh plaintext cluster on the running hosts')).action(async (f: Record<string, unknown>) => {
    const r = await labReset(labOptions(f, Boolean(f.json)));
    if (f.json) return console.log(JSON.stringify(r, null, 2));
    console.log(`lab reset in ${secs(r.totalMs)} (wipe ${secs(r.wipeMs)}, deploy ${secs(r.deployMs)}, start ${secs(r.startMs)})`);
  });

  common(program.command('down').description('stop the hosts and remove what the lab created')).action(async (f: Record<string, unknown>) => {
    const r = await labDown(labOptions(f, Boolean(f.json)));
    if (f.json) return console.log(JSON.stringify(r, null, 2));
    console.log(`lab down: ${r.stopped.length} hosts stopped in ${secs(r.ms)}`);
    for (const p of r.problems) console.log(`  warning: ${p}`);
    if (r.problems.length) process.exitCode = 1;
  });

  common(program.command('deploy').description('deploy onto hosts you run yourself (docker-compose.test.yml)'))
    .addOption(new Option('--topology <file>', 'TiUP topology (default lab/topologies/default.yaml)'))
    .action(async (f: Record<string, unknown>) => {
      const r = await labDeploy(labOptions(f, Boolean(f.json)));
      if (f.json) return console.log(JSON.stringify(r, null, 2));
      console.log(`deployed on ${r.hosts.length} hosts (deploy ${secs(r.deployMs)}, start ${secs(r.startMs)}); env: ${r.envFile}`);
    });

  common(program.command('info').description('paths to point tiseal at the lab')).action((f: Record<string, unknown>) => {
    const i = labInfo(f.dir as string | undefined);
    console.log(f.json ? JSON.stringify(i, null, 2) : Object.entries(i).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : v}`).join('\n'));
  });
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildLabProgram().exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? 0);
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof TisealError) {
      console.error(`error: ${e.message}`);
      if (e.suggestion) console.error(`  suggestion: ${e.suggestion}`);
      return e.exitCode;
    }
    console.error(`error: ${(e as Error).stack ?? String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
