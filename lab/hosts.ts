/**
 * Bringing the set of lab hosts up (bridge, overlays, nspawn, known_hosts) and down again,
 * recording every resource in the state file as soon as it exists.
 */
import * as fs from 'fs';
import * as path from 'path';
import { TisealError } from '../src/errors';
import { bridgePorts, deleteBridge, ensureBridge } from './bridge';
import { bootHost, etcHostsFor, hostRunning, mountOverlay, stopHost, writeHostFiles } from './host';
import type { ResolvedOptions } from './options';
import { scanHostKeys, sshRun, SshTarget } from './ssh';
import { HostRecord, LabState, readState, removeState, writeState } from './state';
import { gatewayAddress, hostnameFor, parseSubnet } from './subnet';
import { waitFor, writeFileAtomic } from './sys';

export interface HostsUpResult {
  state: LabState;
  booted: string[];
  reused: string[];
  /** Wall time from the first nspawn start to the last host accepting an SSH login. */
  bootMs: number;
}

function newRecord(o: ResolvedOptions, ip: string): HostRecord {
  const hostname = hostnameFor(ip);
  const overlayRoot = path.join(o.overlayBase, hostname);
  return {
    host: ip,
    hostname,
    machine: `${hostname}-${o.key}`,
    overlayRoot,
    merged: path.join(overlayRoot, 'merged'),
    mounted: false,
    cgroups: [],
    consoleLog: path.join(o.overlayBase, `${hostname}.console.log`),
  };
}

/** Boot every host in `ips` (reusing running ones), then collect host keys into known_hosts. */
export async function hostsUp(o: ResolvedOptions, ips: string[], rootfs: string, ssh: SshTarget, authorizedKey: string): Promise<HostsUpResult> {
  const subnet = parseSubnet(o.subnet);
  const gw = `${gatewayAddress(subnet)}/${subnet.prefix}`;
  let state = readState(o.dir);
  if (state && state.hosts.some(hostRunning) && (state.subnet !== subnet.cidr || state.bridge.name !== o.bridge)) {
    throw new TisealError(`the lab in ${o.dir} is running on ${state.bridge.name} ${state.subnet}, not ${o.bridge} ${subnet.cidr}`, {
      suggestion: 'run `npm run lab -- down` first to change the bridge or subnet',
    });
  }
  if (!state) {
    state = { version: 1, dir: o.dir, rootfs, subnet: subnet.cidr, bridge: { name: o.bridge, address: gw, created: false }, hosts: [], updatedAt: '' };
  }
  state.subnet = subnet.cidr;
  state.rootfs = rootfs;
  const { created } = await ensureBridge(o.bridge, gw);
  state.bridge = { name: o.bridge, address: gw, created: state.bridge.created || created };
  writeState(state);

  // Hosts that left the topology go away first.
  for (const rec of state.hosts.filter((h) => !ips.includes(h.host))) {
    o.log(`stopping ${rec.host} (no longer in the topology)`);
    await stopHost(rec);
  }
  state.hosts = state.hosts.filter((h) => ips.includes(h.host));
  writeState(state);

  const etcHosts = etcHostsFor(ips.map((ip) => ({ ip, hostname: hostnameFor(ip) })));
  const booted: string[] = [];
  const reused: string[] = [];
  const started = Date.now();
  fs.mkdirSync(o.overlayBase, { recursive: true });
  for (const ip of ips) {
    let rec = state.hosts.find((h) => h.host === ip);
    if (rec && hostRunning(rec)) {
      reused.push(ip);
      continue;
    }
    if (rec) await stopHost(rec); // leftovers of a crashed run: start from a clean overlay
    else {
      rec = newRecord(o, ip);
      state.hosts.push(rec);
    }
    await mountOverlay(rec, rootfs);
    rec.mounted = true;
    writeState(state);
    writeHostFiles(rec.merged, { ip, prefix: subnet.prefix, hostname: rec.hostname, etcHosts, authorizedKey });
    fs.writeFileSync(rec.consoleLog, '');
    const b = bootHost(rec, { bridge: o.bridge, nodePath: fs.realpathSync(process.execPath), repoDir: o.repoDir });
    Object.assign(rec, { pid: b.pid, pidStart: b.pidStart, cgroups: b.cgroups, bootedAt: new Date().toISOString() });
    writeState(state);
    booted.push(ip);
  }
  state.hosts.sort((a, b) => ips.indexOf(a.host) - ips.indexOf(b.host));
  writeState(state);

  // Host keys: scan until every host answers, then verify a real login through them.
  const keyLines = await Promise.all(
    ips.map((ip) =>
      waitFor(`SSH host keys of ${ip}`, 60_000, async () => {
        const rec = state!.hosts.find((h) => h.host === ip)!;
        if (!hostRunning(rec)) throw new Error(`${ip}: systemd-nspawn exited; see ${rec.consoleLog}`);
        const lines = await scanHostKeys(ip);
        return lines.length > 0 ? lines : undefined;
      }, 150),
    ),
  );
  writeFileAtomic(ssh.knownHostsFile, keyLines.flat().join('\n') + '\n', 0o644);
  await Promise.all(
    ips.map((ip) =>
      waitFor(`SSH login to tidb@${ip}`, 30_000, async () => {
        const r = await sshRun(ssh, ip, 'sudo -n true', { allowFailure: true, timeoutMs: 10_000 });
        if (r.code !== 0) throw new Error(r.stderr.trim());
        return true;
      }, 150),
    ),
  );
  return { state, booted, reused, bootMs: booted.length ? Date.now() - started : 0 };
}

/** Stop every host the state file lists, then the bridge if the lab created it. */
export async function hostsDown(o: ResolvedOptions): Promise<{ stopped: string[]; problems: string[] }> {
  const state = readState(o.dir);
  if (!state) return { stopped: [], problems: [] };
  const problems: string[] = [];
  const stopped: string[] = [];
  await Promise.all(
    state.hosts.map(async (rec) => {
      o.log(`stopping ${rec.host} (${rec.hostname})`);
      problems.push(...(await stopHost(rec)));
      stopped.push(rec.host);
      writeState(state);
    }),
  );
  state.hosts = state.hosts.filter((h) => h.mounted);
  writeState(state);
  if (state.bridge.created) {
    const ports = bridgePorts(state.bridge.name);
    if (ports.length > 0) problems.push(`bridge ${state.bridge.name} still has ports (${ports.join(', ')}); left in place`);
    else await deleteBridge(state.bridge.name);
  }
  if (state.hosts.length === 0 && problems.length === 0) {
    removeState(o.dir);
    for (const ip of stopped) fs.rmSync(newRecord(o, ip).consoleLog, { force: true });
    for (const d of [o.overlayBase, path.dirname(o.overlayBase)]) {
      try {
        fs.rmdirSync(d);
      } catch {
        break; // console logs or another lab's hosts remain
      }
    }
  }
  return { stopped, problems };
}
