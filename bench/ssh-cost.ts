/**
 * SSH cost per command on the lab: handshakes per host (one connection per host per run is the
 * rule), commands run, and the time spent in SSH round trips and handshakes, read from each run's
 * --stats-file.
 */
import * as path from 'path';
import type { LabInfo } from '../lab';
import { tisealWithStats } from './outage';
import type { RunStatsReport } from '../src/util/run-stats';

export interface SshCostRow {
  command: string;
  wallMs: number;
  hosts: number;
  handshakes: number;
  maxHandshakesPerHost: number;
  execs: number;
  rttTotalMs: number;
  connectTotalMs: number;
}

export const sshRow = (label: string, s: RunStatsReport): SshCostRow => ({
  command: label,
  wallMs: s.wallMs,
  hosts: s.ssh.hosts,
  handshakes: s.ssh.handshakes,
  maxHandshakesPerHost: s.ssh.maxHandshakesPerHost,
  execs: s.ssh.execs,
  rttTotalMs: s.ssh.rttTotalMs,
  connectTotalMs: s.ssh.connectTotalMs,
});

export async function benchSshCommands(o: { info: LabInfo; enableRuns: Array<{ schedule: string; stats: RunStatsReport }>; disableRuns: RunStatsReport[]; workDir: string; log: (m: string) => void }): Promise<SshCostRow[]> {
  const rows: SshCostRow[] = [];
  o.enableRuns.forEach((r) => rows.push(sshRow(`tls enable --schedule ${r.schedule}`, r.stats)));
  o.disableRuns.forEach((s) => rows.push(sshRow('tls disable', s)));
  for (const [label, args] of [
    ['tls status', ['tls', 'status', '--json']],
    ['audit', ['audit', '--json']],
  ] as const) {
    o.log(`ssh: ${label}`);
    // A plaintext cluster is an audit FAIL (exit 1) and a status error; only a crash is a benchmark failure.
    rows.push(sshRow(label, await tisealWithStats(o.info, [...args], path.join(o.workDir, `${label.replace(/\W+/g, '-')}.json`), [0, 1, 3])));
  }
  return rows;
}
