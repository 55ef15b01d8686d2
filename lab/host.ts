/**
 * One lab host = one systemd-nspawn container booting real systemd on an overlay of the shared
 * rootfs, with its own cgroup, hostname, machine-id, static address and authorized key.
 */
import { spawn } from 'child_process';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { createHostCgroups, removeHostCgroups } from './cgroup';
import type { HostRecord } from './state';
import { isMountPoint, pidAlive, pidStartTime, removeTree, run, sleep } from './sys';

export interface HostFilesOptions {
  ip: string;
  prefix: number;
  hostname: string;
  /** `/etc/hosts` content (every lab host). */
  etcHosts: string;
  authorizedKey: string;
}

export interface BootOptions {
  bridge: string;
  nodePath: string; // real path of the machine's node binary
  repoDir: string; // the parts the emulators need are bound read-only below /opt/tiseal
}

/**
 * What the hosts get from this machine, read-only: the compiled emulators and the one package they
 * require at run time (check with `grep -rho 'require("[^.][^"]*")' dist/lab/emulators`), at the
 * paths the wrappers exec. Never the whole repository: its .lab/ holds the lab's tiseal state,
 * CA key included, and a host must not see a CA key.
 */
export function emulatorBinds(repoDir: string): Array<{ source: string; target: string }> {
  return ['dist/lab/emulators', 'node_modules/@iarna/toml'].map((rel) => ({ source: path.join(repoDir, rel), target: `/opt/tiseal/${rel}` }));
}

const TIDB_UID = 1000;

/** Mount `<overlayRoot>/merged` = rootfs (lower) + upper/work of this host. */
export async function mountOverlay(rec: HostRecord, rootfs: string): Promise<void> {
  if (isMountPoint(rec.merged)) return;
  const upper = path.join(rec.overlayRoot, 'upper');
  const work = path.join(rec.overlayRoot, 'work');
  for (const d of [upper, work, rec.merged]) fs.mkdirSync(d, { recursive: true });
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${rootfs},upperdir=${upper},workdir=${work}`, rec.merged]);
}

function writeInto(root: string, rel: string, content: string, mode = 0o644, uid = 0): void {
  const file = path.join(root, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, { mode });
  fs.chmodSync(file, mode);
  fs.chownSync(file, uid, uid);
}

/** Per-host identity written into the overlay before boot. */
export function writeHostFiles(merged: string, o: HostFilesOptions): void {
  writeInto(merged, 'etc/hostname', `${o.hostname}\n`);
  writeInto(merged, 'etc/machine-id', `${randomBytes(16).toString('hex')}\n`, 0o444);
  writeInto(merged, 'etc/hosts', o.etcHosts);
  writeInto(
    merged,
    'etc/systemd/network/10-tiseal-host0.network',
    ['[Match]', 'Name=host0', '', '[Network]', `Address=${o.ip}/${o.prefix}`, 'LinkLocalAddressing=no', 'IPv6AcceptRA=no', ''].join('\n'),
  );
  const sshDir = path.join(merged, 'home/tidb/.ssh');
  fs.mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  fs.chownSync(sshDir, TIDB_UID, TIDB_UID);
  writeInto(merged, 'home/tidb/.ssh/authorized_keys', o.authorizedKey.trim() + '\n', 0o600, TIDB_UID);
}

export function etcHostsFor(hosts: Array<{ ip: string; hostname: string }>): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', ...hosts.map((h) => `${h.ip}\t${h.hostname}`)];
  return lines.join('\n') + '\n';
}

/**
 * Start the container detached. The launcher shell moves itself into the host's cgroups and then
 * exec's nspawn, so the PID we get is nspawn's own.
 */
export function bootHost(rec: HostRecord, o: BootOptions): { pid: number; pidStart: string; cgroups: string[] } {
  const cgroups = createHostCgroups(rec.machine);
  const args = [
    '--boot',
    `--directory=${rec.merged}`,
    `--machine=${rec.machine}`,
    `--hostname=${rec.hostname}`,
    // No machined / system bus on this machine: without these two nspawn fails "Failed to open system bus".
    '--register=no',
    '--keep-unit',
    `--network-bridge=${o.bridge}`,
    '--console=read-only',
    '--link-journal=no',
    '--resolv-conf=off',
    '--timezone=off',
    `--bind-ro=${o.nodePath}:/usr/local/bin/node`,
    ...emulatorBinds(o.repoDir).map((b) => `--bind-ro=${b.source}:${b.target}`),
  ];
  const launcher = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1/cgroup.procs" || exit 97; shift; n=$((n-1)); done; exec "$@"';
  const logFd = fs.openSync(rec.consoleLog, 'a');
  const child = spawn('/bin/sh', ['-c', launcher, 'tiseal-lab-launch', String(cgroups.length), ...cgroups, 'systemd-nspawn', ...args], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
  });
  fs.closeSync(logFd);
  child.on('error', () => undefined);
  child.unref();
  if (!child.pid) throw new Error(`could not start systemd-nspawn for ${rec.host}`);
  return { pid: child.pid, pidStart: pidStartTime(child.pid) ?? '', cgroups };
}

/** Is the recorded nspawn process still the one we started? */
export function hostRunning(rec: HostRecord): boolean {
  if (!rec.pid || !pidAlive(rec.pid)) return false;
  if (rec.pidStart && pidStartTime(rec.pid) !== rec.pidStart) return false;
  try {
    const cmd = fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8');
    return cmd.includes('systemd-nspawn') || cmd.includes('tiseal-lab-launch');
  } catch {
    return false;
  }
}

/**
 * Stop a host: SIGTERM to nspawn (it powers the container off cleanly), wait, SIGKILL as a last
 * resort; unmount the overlay; remove its cgroups depth-first; delete the overlay directories.
 * Returns problems that did not stop the teardown.
 */
export async function stopHost(rec: HostRecord, opts: { timeoutMs?: number; keepOverlay?: boolean } = {}): Promise<string[]> {
  const problems: string[] = [];
  if (rec.pid && hostRunning(rec)) {
    process.kill(rec.pid, 'SIGTERM');
    const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
    while (pidAlive(rec.pid) && Date.now() < deadline) await sleep(100);
    if (pidAlive(rec.pid)) {
      problems.push(`${rec.host}: nspawn ${rec.pid} ignored SIGTERM; killed`);
      process.kill(rec.pid, 'SIGKILL');
      for (let i = 0; i < 50 && pidAlive(rec.pid); i++) await sleep(100);
    }
  }
  problems.push(...(await removeHostCgroups(rec.cgroups)));
  rec.pid = undefined;
  rec.pidStart = undefined;
  if (isMountPoint(rec.merged)) {
    let ok = false;
    for (let i = 0; i < 20 && !ok; i++) {
      ok = (await run('umount', [rec.merged], { allowFailure: true })).code === 0;
      if (!ok) await sleep(250);
    }
    if (!ok) {
      problems.push(`${rec.host}: ${rec.merged} busy; lazily unmounted`);
      await run('umount', ['-l', rec.merged], { allowFailure: true });
    }
  }
  rec.mounted = isMountPoint(rec.merged);
  if (!opts.keepOverlay && !rec.mounted) removeTree(rec.overlayRoot);
  return problems;
}
