/**
 * Who did what (#29 item 6): every changing run appends one JSON line to `<state-dir>/audit.log`
 * (0600, append-only writes, never through a symlink) and sends the same line to syslog
 * (`logger -t tiseal -p auth.notice`, facility auth as sudo logs; skipped where nothing listens on
 * /dev/log). Dry runs and read-only verbs
 * write nothing. A log that cannot be written is a warning, not a failed run: the cluster change
 * has happened either way.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseBundle } from '../pki';
import { runRecord } from '../util/run-record';
import { ensureStateDirs } from './private-dir';

/** Verbs that change a cluster or sign a certificate. */
export const CHANGING_VERBS = new Set([
  'tls enable', 'tls disable', 'tls rotate',
  'sql-tls enable', 'sql-tls rotate', 'sql-tls require', 'sql-tls disable',
  'encrypt enable', 'encrypt disable', 'encrypt rotate-key',
  'cert client',
]);

export interface AuditRecord {
  at: string;
  user: string;
  uid: number | undefined;
  controlHost: string;
  pid: number;
  runId: string;
  verb: string;
  argv: string[];
  cluster?: string;
  outcome: 'ok' | 'failed';
  exitCode: number;
  error?: string;
  issued: Array<{ cn: string; serial: string; notAfter: string; ca: string }>;
  /** Fingerprints of the CAs involved: those that signed in this run, and the cluster CA on file. */
  caFingerprints: string[];
}

function clusterCaFingerprint(stateDir: string, cluster: string | undefined): string | undefined {
  if (!cluster) return undefined;
  try {
    const pem = fs.readFileSync(path.join(stateDir, 'clusters', cluster, 'tls', 'ca.crt'), 'utf8');
    return parseBundle(pem)[0]?.fingerprintSha256;
  } catch {
    return undefined;
  }
}

export function auditRecord(o: { stateDir: string; verb: string; argv: string[]; exitCode: number; failure?: unknown; clusterName?: string }): AuditRecord {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    user = process.env.USER ?? 'unknown';
  }
  const cluster = runRecord.cluster ?? o.clusterName;
  const fps = new Set(runRecord.issued.map((i) => i.ca));
  const onFile = clusterCaFingerprint(o.stateDir, cluster);
  if (onFile) fps.add(onFile);
  const err = o.failure instanceof Error ? o.failure.message.split('\n')[0] : o.failure === undefined ? undefined : String(o.failure);
  return {
    at: new Date().toISOString(),
    user,
    uid: typeof process.getuid === 'function' ? process.getuid() : undefined,
    controlHost: os.hostname(),
    pid: process.pid,
    runId: runRecord.runId ?? `${o.verb.replace(/ /g, '-')}-${Date.now()}`,
    verb: o.verb,
    argv: o.argv,
    cluster,
    outcome: o.exitCode === 0 && o.failure === undefined ? 'ok' : 'failed',
    exitCode: o.exitCode,
    ...(err ? { error: err } : {}),
    issued: [...runRecord.issued],
    caFingerprints: [...fps],
  };
}

/** Append the record to `<stateDir>/audit.log` and to syslog; returns the warnings (nothing fails the run). */
export function appendAuditLog(stateDir: string, rec: AuditRecord, opts: { syslog?: false | { socket: string } | { udpPort: number } } = {}): string[] {
  const warnings: string[] = [];
  const line = JSON.stringify(rec);
  const file = path.join(stateDir, 'audit.log');
  try {
    ensureStateDirs(stateDir, []);
    // O_APPEND: concurrent runs of other clusters never interleave within a line; O_NOFOLLOW: a
    // symlink planted as audit.log is refused, not written through.
    const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile()) throw new Error('not a regular file');
      if (typeof process.getuid === 'function' && st.uid !== process.getuid()) throw new Error(`belongs to uid ${st.uid}, not to the user running tiseal`);
      if ((st.mode & 0o077) !== 0) fs.fchmodSync(fd, 0o600);
      fs.writeSync(fd, line + '\n');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    warnings.push(`could not append to ${file}: ${(e as Error).message}`);
  }
  const target = opts.syslog ?? { socket: '/dev/log' };
  // No /dev/log: no syslog daemon (nor journald) listens on this machine; nothing to send to.
  if (target && ('udpPort' in target || fs.existsSync(target.socket))) {
    const where = 'udpPort' in target ? ['-d', '-n', '127.0.0.1', '-P', String(target.udpPort)] : ['-u', target.socket];
    const r = spawnSync('logger', [...where, '-t', 'tiseal', '-p', 'auth.notice', '--', line], { encoding: 'utf8', timeout: 5000 });
    if (r.error || r.status !== 0) warnings.push(`could not send the run record to syslog (logger): ${r.error?.message ?? r.stderr.trim()}`);
  }
  return warnings;
}
