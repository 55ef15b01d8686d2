/**
 * The lab as a library: real Debian hosts (systemd-nspawn) running a TiUP-style plaintext cluster
 * of emulated components. `npm run lab -- <verb>` (lab/cli.ts) is a thin wrapper around these.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { PreflightError, TisealError } from '../src/errors';
import { loadTopology } from '../src/topology';
import type { Topology } from '../src/topology/types';
import { shq } from '../src/util/shell';
import { cgroupHierarchies } from './cgroup';
import { deployCluster } from './cluster';
import { checkLabRoles, LAB_UNIT_PATTERN } from './deploy';
import { EMULATOR_ENTRIES } from './emulators/wrapper';
import { clusterHealth, ClusterHealth } from './health';
import { hostRunning } from './host';
import { hostsDown, hostsUp } from './hosts';
import { defaultTopologyFile, LabOptions, resolveOptions, ResolvedOptions } from './options';
import { ensureRootfs, rootfsPaths, stampMatches } from './rootfs';
import { ensureKeypair, scanHostKeys, sshRun, SshTarget } from './ssh';
import { readState, writeState } from './state';
import { inSubnet, parseSubnet } from './subnet';
import { pidAlive, waitFor, which, writeFileAtomic } from './sys';

export type { LabOptions } from './options';
export type { ClusterHealth } from './health';

export const LAB_USER = 'tidb';

export interface LabInfo {
  dir: string;
  topologyFile: string;
  identityFile: string;
  knownHostsFile: string;
  /** TISEAL_STATE_DIR for tiseal runs against the lab. */
  stateDir: string;
  /** Shell-sourceable TISEAL_* settings. */
  envFile: string;
  user: string;
  /** Host addresses (as in the topology), in topology order. */
  hosts: string[];
}

export interface LabUpResult extends LabInfo {
  booted: string[];
  reused: string[];
  deployed: boolean;
  timings: { rootfsMs: number; rootfsBuilt: boolean; bootMs: number; deployMs?: number; startMs?: number; totalMs: number };
}

export interface LabHostStatus {
  host: string;
  hostname: string;
  running: boolean;
  pid?: number;
  ssh: boolean;
  /** unit → `systemctl is-active` answer */
  units: Record<string, string>;
  error?: string;
}

export interface LabStatus {
  dir: string;
  up: boolean;
  bridge?: string;
  subnet?: string;
  hosts: LabHostStatus[];
  cluster?: ClusterHealth;
}

/** Can this machine run the lab? (root, systemd-nspawn, debootstrap unless the rootfs is cached, cgroups, overlayfs) */
export function labAvailable(opts: { cacheDir?: string } = {}): { ok: boolean; reason?: string } {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return { ok: false, reason: 'the lab needs root (systemd-nspawn, mounts, bridges)' };
  for (const tool of ['systemd-nspawn', 'ip', 'mount', 'ssh', 'ssh-keygen', 'ssh-keyscan']) {
    if (!which(tool)) return { ok: false, reason: `${tool} is not installed` };
  }
  const p = rootfsPaths(opts.cacheDir ?? process.env.TISEAL_LAB_CACHE);
  let cached = false;
  try {
    cached = fs.existsSync(path.join(p.rootfs, 'usr/bin/systemctl')) && stampMatches(JSON.parse(fs.readFileSync(p.stamp, 'utf8')));
  } catch {
    cached = false;
  }
  if (!cached && !which('debootstrap')) return { ok: false, reason: 'debootstrap is not installed and no lab rootfs is cached' };
  if (cgroupHierarchies().length === 0) return { ok: false, reason: 'no usable cgroup hierarchy under /sys/fs/cgroup' };
  try {
    if (!/\toverlay\n/.test(fs.readFileSync('/proc/filesystems', 'utf8'))) return { ok: false, reason: 'the kernel has no overlay filesystem' };
  } catch {
    return { ok: false, reason: 'cannot read /proc/filesystems' };
  }
  return { ok: true };
}

function paths(dir: string): Omit<LabInfo, 'hosts'> {
  return {
    dir,
    topologyFile: path.join(dir, 'topology.yaml'),
    identityFile: path.join(dir, 'id_ed25519'),
    knownHostsFile: path.join(dir, 'known_hosts'),
    stateDir: path.join(dir, 'state'),
    envFile: path.join(dir, 'tiseal.env'),
    user: LAB_USER,
  };
}

function sshTarget(info: Omit<LabInfo, 'hosts'>): SshTarget {
  return { identityFile: info.identityFile, knownHostsFile: info.knownHostsFile, user: info.user };
}

/** Paths and hosts of a lab directory (default: the default lab). Does not check that it is up. */
export function labInfo(dir?: string): LabInfo {
  const o = resolveOptions({ dir });
  const p = paths(o.dir);
  let hosts: string[] = [];
  if (fs.existsSync(p.topologyFile)) hosts = loadTopology(p.topologyFile).hosts.map((h) => h.host);
  else hosts = readState(o.dir)?.hosts.map((h) => h.host) ?? [];
  return { ...p, hosts };
}

function lock(dir: string): () => void {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, '.lock');
  for (let i = 0; i < 2; i++) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number(fs.readFileSync(file, 'utf8').trim());
      if (holder && holder !== process.pid && pidAlive(holder)) {
        throw new TisealError(`the lab in ${dir} is busy (pid ${holder} holds ${file})`, { suggestion: 'wait for the other lab command to finish' });
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new TisealError(`could not lock ${file}`);
}

function requireAvailable(o: ResolvedOptions): void {
  const a = labAvailable({ cacheDir: o.cacheDir });
  if (!a.ok) throw new PreflightError(`the lab cannot run here: ${a.reason}`, { suggestion: 'run as root on Linux with systemd-container and debootstrap installed' });
  // The hosts run the compiled emulators from the repo (bound below /opt/tiseal, lab/host.ts emulatorBinds).
  const missing = Object.values(EMULATOR_ENTRIES).filter((e) => !fs.existsSync(path.join(o.repoDir, 'dist', 'lab', 'emulators', e)));
  if (missing.length) {
    throw new PreflightError(`the compiled emulators are missing (dist/lab/emulators/${missing.join(', ')})`, { suggestion: 'npx tsc -p tsconfig.build.json (npm run lab builds first)' });
  }
}

/** Load and check a lab topology: supported roles, every host an address inside the lab subnet, ssh port 22. */
export function loadLabTopology(file: string, subnetCidr: string): Topology {
  const topo = loadTopology(file);
  checkLabRoles(topo);
  const subnet = parseSubnet(subnetCidr);
  for (const h of topo.hosts) {
    if (!inSubnet(h.host, subnet)) {
      throw new TisealError(`${file}: host ${h.host} is not an address inside the lab subnet ${subnet.cidr}`, {
        suggestion: `use host addresses from ${subnet.cidr} (or pass --subnet)`,
      });
    }
    if (h.sshPort !== 22) throw new TisealError(`${file}: host ${h.host} uses ssh_port ${h.sshPort}; lab hosts run sshd on 22`);
  }
  return topo;
}

function writeEnvFile(info: LabInfo): void {
  const lines = [
    '# tiseal against this lab:  set -a; . ' + info.envFile + '; set +a',
    `# flags instead: --identity-file ${shq(info.identityFile)} --known-hosts ${shq(info.knownHostsFile)} --ssh-user ${info.user} --state-dir ${shq(info.stateDir)}`,
    `TISEAL_IDENTITY_FILE=${shq(info.identityFile)}`,
    `TISEAL_KNOWN_HOSTS=${shq(info.knownHostsFile)}`,
    `TISEAL_SSH_USER=${info.user}`,
    `TISEAL_STATE_DIR=${shq(info.stateDir)}`,
    `TISEAL_TOPOLOGY=${shq(info.topologyFile)}`,
    '',
  ];
  writeFileAtomic(info.envFile, lines.join('\n'));
}

const sha256 = (s: string): string => createHash('sha256').update(s).digest('hex');

/**
 * Boot one host per distinct topology host (reusing running ones and the cached rootfs), deploy the
 * plaintext cluster (skipped when it is already deployed from the same topology and healthy), and
 * write topology.yaml, id_ed25519, known_hosts, tiseal.env and lab-state.json into the lab dir.
 */
export async function labUp(opts: LabOptions = {}): Promise<LabUpResult> {
  const started = Date.now();
  const o = resolveOptions(opts);
  requireAvailable(o);
  const release = lock(o.dir);
  try {
    const p = paths(o.dir);
    const prior = readState(o.dir);
    const running = prior?.hosts.some(hostRunning) ?? false;
    const source = opts.topology ? path.resolve(opts.topology) : running && fs.existsSync(p.topologyFile) ? p.topologyFile : defaultTopologyFile();
    const topo = loadLabTopology(source, o.subnet);
    const topoText = fs.readFileSync(source, 'utf8');
    const rootfs = await ensureRootfs({ cacheDir: o.cacheDir, log: o.log });
    const pub = await ensureKeypair(p.identityFile);
    const ssh = sshTarget(p);
    const ips = topo.hosts.map((h) => h.host);
    o.log(`bringing up ${ips.length} hosts on ${o.bridge} (${o.subnet})`);
    const up = await hostsUp(o, ips, rootfs.rootfs, ssh, pub);
    if (up.booted.length) o.log(`hosts up in ${(up.bootMs / 1000).toFixed(1)} s (${up.booted.length} booted, ${up.reused.length} reused)`);
    if (source !== p.topologyFile) writeFileAtomic(p.topologyFile, topoText);
    fs.mkdirSync(p.stateDir, { recursive: true });
    const info: LabInfo = { ...p, hosts: ips };
    writeEnvFile(info);
    // The deployed topology is the lab dir's copy: paths in messages point there.
    const deployedTopo = loadTopology(p.topologyFile);
    const state = up.state;
    let deployed = false;
    let deployMs: number | undefined;
    let startMs: number | undefined;
    const unchanged = up.booted.length === 0 && state.deployed?.topologySha256 === sha256(topoText) && state.deployed.version === o.version;
    if (!(unchanged && (await clusterHealth(deployedTopo)).healthy)) {
      const t = await deployCluster(deployedTopo, ssh, { version: o.version, wipe: up.reused.length > 0, log: o.log });
      deployMs = t.deployMs;
      startMs = t.startMs;
      deployed = true;
      state.deployed = { topologySha256: sha256(topoText), version: o.version, at: new Date().toISOString() };
      writeState(state);
    } else {
      o.log('cluster already deployed and healthy');
    }
    return {
      ...info,
      booted: up.booted,
      reused: up.reused,
      deployed,
      timings: { rootfsMs: rootfs.ms, rootfsBuilt: rootfs.built, bootMs: up.bootMs, deployMs, startMs, totalMs: Date.now() - started },
    };
  } finally {
    release();
  }
}

/** Stop every host the state file lists, unmount overlays, remove cgroups and the bridge the lab made. */
export async function labDown(opts: LabOptions = {}): Promise<{ stopped: string[]; problems: string[]; ms: number }> {
  const started = Date.now();
  const o = resolveOptions(opts);
  const release = lock(o.dir);
  try {
    const r = await hostsDown(o);
    if (r.problems.length === 0) {
      const p = paths(o.dir);
      // Host keys and the deployed cluster are gone with the hosts; the SSH key pair is kept for the next `up`.
      for (const f of [p.knownHostsFile, p.envFile, p.topologyFile]) fs.rmSync(f, { force: true });
      fs.rmSync(p.stateDir, { recursive: true, force: true });
    }
    return { ...r, ms: Date.now() - started };
  } finally {
    release();
  }
}

/**
 * Wipe every host's cluster (units, deploy/data/log dirs) and deploy a fresh plaintext cluster on
 * the running hosts, without rebooting them. Also empties the lab's tiseal state dir (it described
 * the old cluster) unless `keepStateDir`.
 */
export async function labReset(opts: LabOptions & { keepStateDir?: boolean } = {}): Promise<{ wipeMs: number; deployMs: number; startMs: number; totalMs: number }> {
  const started = Date.now();
  const o = resolveOptions(opts);
  const release = lock(o.dir);
  try {
    const p = paths(o.dir);
    const state = readState(o.dir);
    if (!state || !state.hosts.length || !state.hosts.every(hostRunning) || !fs.existsSync(p.topologyFile)) {
      throw new TisealError(`the lab in ${o.dir} is not up`, { suggestion: 'run `npm run lab -- up` first' });
    }
    // A test may deploy a variant of the lab topology on the same hosts (e.g. Pump/Drainer up to v8.3).
    const file = opts.topology ? path.resolve(opts.topology) : p.topologyFile;
    const topo = loadTopology(file);
    const t = await deployCluster(topo, sshTarget(p), { version: o.version, wipe: true, log: o.log });
    if (!opts.keepStateDir) {
      fs.rmSync(p.stateDir, { recursive: true, force: true });
      fs.mkdirSync(p.stateDir, { recursive: true });
    }
    state.deployed = { topologySha256: sha256(fs.readFileSync(file, 'utf8')), version: o.version, at: new Date().toISOString() };
    writeState(state);
    return { wipeMs: t.wipeMs ?? 0, deployMs: t.deployMs, startMs: t.startMs, totalMs: Date.now() - started };
  } finally {
    release();
  }
}

/**
 * Deploy onto hosts someone else runs (docker-compose.test.yml): record their host keys, then wipe,
 * deploy and start the plaintext cluster. Needs `<dir>/id_ed25519` authorized for `tidb` there.
 */
export async function labDeploy(opts: LabOptions = {}): Promise<LabInfo & { deployMs: number; startMs: number }> {
  const o = resolveOptions(opts);
  const release = lock(o.dir);
  try {
    const p = paths(o.dir);
    if (!fs.existsSync(p.identityFile)) throw new TisealError(`${p.identityFile} does not exist`, { suggestion: `ssh-keygen -t ed25519 -N '' -f ${p.identityFile}` });
    const source = path.resolve(opts.topology ?? defaultTopologyFile());
    const topo = loadLabTopology(source, o.subnet);
    const keys = await Promise.all(
      topo.hosts.map((h) =>
        waitFor(`SSH host keys of ${h.host}`, 60_000, async () => {
          const lines = await scanHostKeys(h.host);
          return lines.length ? lines : undefined;
        }, 500),
      ),
    );
    writeFileAtomic(p.knownHostsFile, keys.flat().join('\n') + '\n');
    if (source !== p.topologyFile) writeFileAtomic(p.topologyFile, fs.readFileSync(source, 'utf8'));
    fs.mkdirSync(p.stateDir, { recursive: true });
    const info: LabInfo = { ...p, hosts: topo.hosts.map((h) => h.host) };
    writeEnvFile(info);
    const t = await deployCluster(loadTopology(p.topologyFile), sshTarget(p), { version: o.version, wipe: true, log: o.log });
    return { ...info, deployMs: t.deployMs, startMs: t.startMs };
  } finally {
    release();
  }
}

/** Hosts up? units active? PD members, stores, TiDB/CDC status. Read-only. */
export async function labStatus(opts: LabOptions = {}): Promise<LabStatus> {
  const o = resolveOptions(opts);
  const state = readState(o.dir);
  const p = paths(o.dir);
  if (!state) return { dir: o.dir, up: false, hosts: [] };
  const topo = fs.existsSync(p.topologyFile) ? loadTopology(p.topologyFile) : undefined;
  const ssh = sshTarget(p);
  const hosts = await Promise.all(
    state.hosts.map(async (rec): Promise<LabHostStatus> => {
      const s: LabHostStatus = { host: rec.host, hostname: rec.hostname, running: hostRunning(rec), pid: rec.pid, ssh: false, units: {} };
      if (!s.running) return s;
      const r = await sshRun(ssh, rec.host, `for u in $(ls /etc/systemd/system | grep -E ${shq(LAB_UNIT_PATTERN)}); do echo "$u $(systemctl is-active "$u")"; done`, {
        allowFailure: true,
        timeoutMs: 15_000,
      });
      s.ssh = r.code === 0;
      if (!s.ssh) s.error = r.stderr.trim().split('\n').pop();
      for (const line of r.stdout.split('\n').filter(Boolean)) {
        const [unit, st] = line.split(' ');
        s.units[unit] = st;
      }
      return s;
    }),
  );
  const up = hosts.length > 0 && hosts.every((h) => h.running && h.ssh);
  const cluster = up && topo ? await clusterHealth(topo) : undefined;
  return { dir: o.dir, up, bridge: state.bridge.name, subnet: state.subnet, hosts, cluster };
}
