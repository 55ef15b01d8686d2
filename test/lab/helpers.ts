/**
 * Shared by every lab test file: bring the lab up once per jest run (labUp reuses running hosts
 * and a healthy cluster, so later files pay ~2 s), talk to hosts with the system ssh client under
 * StrictHostKeyChecking=yes, and skip with a printed reason where the lab cannot run (a failure
 * instead under TISEAL_REQUIRE_LAB=1).
 * A lab this jest run booted is recorded in a marker file and taken down after the run by
 * test/lab/global-teardown.ts (jest globalTeardown of the lab project); one that was already up
 * stays up. TISEAL_LAB_KEEP=1 keeps it up either way.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as path from 'path';
import { labAvailable, labUp, LabInfo } from '../../lab';
import { EMULATOR_ENTRIES } from '../../lab/emulators/wrapper';
import { hostRunning } from '../../lab/host';
import { defaultTopologyFile, resolveOptions } from '../../lab/options';
import { readState } from '../../lab/state';
import { writeFileAtomic } from '../../lab/sys';
import { describeUnless } from '../support/skip-or-fail';

/** Why lab tests must be skipped here, or undefined when they can run. */
export function labSkipReason(): string | undefined {
  const a = labAvailable();
  return a.ok ? undefined : a.reason;
}

/** `describe` for lab suites: skipped (reason printed) when the lab cannot run; a failure under TISEAL_REQUIRE_LAB=1. */
export function describeLab(name: string, fn: () => void): void {
  const reason = labSkipReason();
  describeUnless(reason && `the lab cannot run: ${reason}`)(name, fn);
}

/**
 * The file in the lab dir that says which jest run booted the lab: the pids of this process and of
 * its parent (a worker's parent is jest's main process, where globalTeardown runs; with
 * --runInBand tests run in the main process itself).
 */
export function bootMarkerFile(dir = resolveOptions().dir): string {
  return path.join(dir, 'booted-by-jest.json');
}

const LAB_UP_TIMEOUT_MS = 10 * 60_000; // a cold run builds the rootfs first

const ROOT = path.join(__dirname, '..', '..');

function newestMtime(dir: string, ext: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, ext));
    else if (e.name.endsWith(ext)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** The hosts run dist/lab/emulators/*.js: compile when missing or older than their sources. */
export function ensureEmulatorsBuilt(): void {
  const src = path.join(ROOT, 'lab', 'emulators');
  const out = path.join(ROOT, 'dist', 'lab', 'emulators');
  const entries = Object.values(EMULATOR_ENTRIES).map((e) => path.join(out, e));
  const built = entries.every((e) => fs.existsSync(e));
  if (built && Math.min(...entries.map((e) => fs.statSync(e).mtimeMs)) >= newestMtime(src, '.ts')) return;
  // tsc emits even when another module has a type error; the entries must exist afterwards.
  spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'ignore' });
  const missing = entries.filter((e) => !fs.existsSync(e));
  if (missing.length) throw new Error(`building the emulators failed: ${missing.join(', ')} missing`);
}

/** The lab, up and healthy (boots it on first use in this jest run). */
export async function ensureLab(): Promise<LabInfo> {
  ensureEmulatorsBuilt();
  const log = process.env.TISEAL_LAB_VERBOSE ? (m: string) => process.stderr.write(`[lab] ${m}\n`) : undefined;
  const { dir } = resolveOptions();
  const wasUp = readState(dir)?.hosts.some(hostRunning) ?? false;
  // Always the default topology: a lab left up with an older copy is redeployed from the current file.
  const r = await labUp({ log, topology: defaultTopologyFile() });
  if (!wasUp && r.booted.length) writeFileAtomic(bootMarkerFile(dir), JSON.stringify({ pids: [process.pid, process.ppid], at: new Date().toISOString() }) + '\n');
  return r;
}
ensureLab.timeoutMs = LAB_UP_TIMEOUT_MS;

export interface SshResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** ssh as the lab user with the lab key, verifying host keys against the lab's known_hosts only. */
export function ssh(info: LabInfo, host: string, command: string, opts: { input?: string; knownHosts?: string; timeoutMs?: number } = {}): SshResult {
  const r = spawnSync(
    'ssh',
    [
      '-o', 'BatchMode=yes',
      '-o', 'StrictHostKeyChecking=yes',
      '-o', `UserKnownHostsFile=${opts.knownHosts ?? info.knownHostsFile}`,
      '-o', 'GlobalKnownHostsFile=/dev/null',
      '-o', 'IdentitiesOnly=yes',
      '-o', 'ConnectTimeout=5',
      '-i', info.identityFile,
      `${info.user}@${host}`,
      command,
    ],
    { encoding: 'utf8', input: opts.input ?? '', timeout: opts.timeoutMs ?? 60_000 },
  );
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** ssh that must succeed; returns stdout. */
export function sshOk(info: LabInfo, host: string, command: string, input?: string): string {
  const r = ssh(info, host, command, { input });
  if (r.code !== 0) throw new Error(`${host}: \`${command}\` exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Write a file on a host as root (via sudo), with owner and mode. */
export function putFile(info: LabInfo, host: string, file: string, content: string, opts: { owner?: string; mode?: string } = {}): void {
  const owner = opts.owner ?? `${info.user}:${info.user}`;
  const dir = file.replace(/\/[^/]+$/, '');
  sshOk(
    info,
    host,
    `sudo -n install -d -o ${info.user} -g ${info.user} '${dir}' && sudo -n tee '${file}' >/dev/null && sudo -n chown ${owner} '${file}' && sudo -n chmod ${opts.mode ?? '644'} '${file}'`,
    content,
  );
}

export interface HttpResult {
  status: number;
  body: string;
}

/** GET over http or https (lab addresses only), optionally with a CA and client certificate. */
export function get(url: string, tls: { ca?: string; cert?: string; key?: string } = {}, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(
      url,
      // agent: false — a fresh connection per request (a reused keep-alive socket the server just closed fails with "socket hang up").
      { agent: false, timeout: timeoutMs, ca: tls.ca && fs.readFileSync(tls.ca), cert: tls.cert && fs.readFileSync(tls.cert), key: tls.key && fs.readFileSync(tls.key) },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
    req.on('error', reject);
  });
}

export async function waitUntil<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined> | T | undefined, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && (v as unknown) !== false) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** PD member list as PD's API returns it (names and URLs only: IDs exceed 2^53). */
export async function pdMembers(pd: string): Promise<{ names: string[]; peerUrls: string[]; leader?: string }> {
  const r = await get(`http://${pd}:2379/pd/api/v1/members`);
  if (r.status !== 200) throw new Error(`members: HTTP ${r.status}`);
  const j = JSON.parse(r.body) as { members: Array<{ name: string; peer_urls: string[] }>; leader?: { name: string } };
  return { names: j.members.map((m) => m.name).sort(), peerUrls: j.members.flatMap((m) => m.peer_urls).sort(), leader: j.leader?.name };
}

export async function storeStates(pd: string): Promise<Record<string, string>> {
  const r = await get(`http://${pd}:2379/pd/api/v1/stores`);
  if (r.status !== 200) throw new Error(`stores: HTTP ${r.status}`);
  const j = JSON.parse(r.body) as { stores: Array<{ store: { address: string; state_name: string } }> };
  return Object.fromEntries(j.stores.map((s) => [s.store.address, s.store.state_name]));
}
