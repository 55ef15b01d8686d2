/**
 * The floor under any SSH fan-out on the scale hosts: a Node process that opens one connection per
 * host with tiseal's own pool (same client, keys and host-key check), runs `true`, and lets it go,
 * at the same width as `tls status`. Whatever a read-only verb does on top of this (reading
 * configs as root, probing ports, the report) is tiseal's; the floor itself is the handshake on
 * both ends and sshd's session, which on this benchmark share the machine's cores with tiseal.
 *
 * Run as its own process (`node dist/bench/ssh-floor.js '<json>'`) so Node's start-up counts as it
 * does for tiseal; prints one JSON line: its CPU and peak RSS.
 */
import { SshPool } from '../src/ssh/pool';
import { mapLimit } from '../src/util/concurrency';

export interface FloorConfig {
  ips: string[];
  user: string;
  identityFile: string;
  knownHostsFile: string;
  concurrency: number;
}

export interface FloorReport {
  hosts: number;
  cpuMs: number;
  maxRssKb: number;
}

export async function sshFloor(cfg: FloorConfig): Promise<FloorReport> {
  const pool = new SshPool({ defaultUser: cfg.user, identityFiles: [cfg.identityFile], knownHostsFile: cfg.knownHostsFile, sshConfigFile: false, agent: false });
  try {
    await mapLimit(cfg.ips, cfg.concurrency, async (ip) => {
      const ex = await pool.get(ip);
      await ex.exec('true');
      await pool.release(ip);
    });
  } finally {
    await pool.closeAll();
  }
  const cpu = process.cpuUsage();
  return { hosts: cfg.ips.length, cpuMs: Math.round((cpu.user + cpu.system) / 1000), maxRssKb: process.resourceUsage().maxRSS };
}

if (require.main === module) {
  sshFloor(JSON.parse(process.argv[2]) as FloorConfig).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: Error) => {
      process.stderr.write(`ssh floor: ${e.message}\n`);
      process.exit(1);
    },
  );
}
