/**
 * The shared, read-only root filesystem of every lab host: Debian bookworm minbase built once by
 * debootstrap, prepared in a chroot, cached under /var/cache/tiseal-lab. A stamp beside it records
 * the package list and a hash of the preparation script, so changing either rebuilds it.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { PreflightError, TisealError } from '../src/errors';
import { machineMirror } from './mirror';
import { run, removeTree, writeFileAtomic, isMountPoint, pidAlive } from './sys';

export const DEFAULT_CACHE_DIR = '/var/cache/tiseal-lab';
export const SUITE = 'bookworm';

/** Installed by debootstrap itself: nothing here starts a daemon from its postinst. */
export const BASE_PACKAGES = ['systemd', 'systemd-sysv', 'iproute2', 'libstdc++6', 'curl', 'openssl', 'ca-certificates'];
/** Installed in the chroot under a policy-rc.d that forbids starting services (sshd, etcd, dbus would start on the machine's network otherwise). */
export const SERVICE_PACKAGES = [
  'openssh-server', 'dbus', 'sudo', 'etcd-server', 'etcd-client',
  // The real monitoring stack TiUP deploys (monitoring_servers + the agents on every host).
  'prometheus', 'prometheus-node-exporter', 'prometheus-blackbox-exporter',
];
export const ROOTFS_PACKAGES = [...BASE_PACKAGES, ...SERVICE_PACKAGES];

/** Runs inside the chroot after debootstrap. Its hash is part of the stamp. */
export const PREPARE_SCRIPT = `set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
apt-get update -q
apt-get install -y -q --no-install-recommends ${SERVICE_PACKAGES.join(' ')}
rm -f /usr/sbin/policy-rc.d
# The packages enable their own units; the lab runs etcd only under PD and the monitoring stack
# only as TiUP's units (prometheus-9090, node_exporter-9100, blackbox_exporter-9115).
for u in etcd.service prometheus.service prometheus-node-exporter.service prometheus-blackbox-exporter.service; do
  systemctl disable "$u" >/dev/null 2>&1 || true
done
systemctl enable systemd-networkd.service ssh.service
# Every host must have its own host keys (tests verify them): generate at first boot.
rm -f /etc/ssh/ssh_host_*
cat > /etc/systemd/system/tiseal-ssh-hostkeys.service <<'EOF'
[Unit]
Description=Generate this host's own SSH host keys (tiseal lab)
Before=ssh.service
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target ssh.service
EOF
systemctl enable tiseal-ssh-hostkeys.service
mkdir -p /etc/ssh/sshd_config.d
cat > /etc/ssh/sshd_config.d/tiseal-lab.conf <<'EOF'
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 200
MaxSessions 100
EOF
id tidb >/dev/null 2>&1 || useradd -m -u 1000 -U -s /bin/bash tidb
# '*' = no password but not locked (a locked account may be refused even with a key).
usermod -p '*' tidb
echo 'tidb ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/tidb
chmod 0440 /etc/sudoers.d/tidb
install -d -m 700 -o tidb -g tidb /home/tidb/.ssh
# Empty machine-id: each overlay writes its own (otherwise every host shares one).
: > /etc/machine-id
mkdir -p /var/lib/dbus
ln -sf /etc/machine-id /var/lib/dbus/machine-id
# Mount targets for the read-only binds of node and the repo.
mkdir -p /opt/tiseal /usr/local/bin
: > /usr/local/bin/node
chmod 755 /usr/local/bin/node
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\\nStorage=volatile\\nRuntimeMaxUse=32M\\n' > /etc/systemd/journald.conf.d/tiseal-lab.conf
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service; do
  systemctl mask "$u" >/dev/null 2>&1 || true
done
apt-get clean
rm -rf /var/lib/apt/lists/*
`;

export interface RootfsStamp {
  suite: string;
  packages: string[];
  prepareSha256: string;
  mirror: string;
  builtAt: string;
}

export function desiredStamp(): Omit<RootfsStamp, 'mirror' | 'builtAt'> {
  return {
    suite: SUITE,
    packages: [...ROOTFS_PACKAGES].sort(),
    prepareSha256: createHash('sha256').update(PREPARE_SCRIPT).digest('hex'),
  };
}

/** Does a stamp describe the rootfs we would build now? (mirror and build time do not matter) */
export function stampMatches(stamp: Partial<RootfsStamp> | undefined): boolean {
  if (!stamp) return false;
  const want = desiredStamp();
  return (
    stamp.suite === want.suite &&
    stamp.prepareSha256 === want.prepareSha256 &&
    JSON.stringify([...(stamp.packages ?? [])].sort()) === JSON.stringify(want.packages)
  );
}

export function rootfsPaths(cacheDir = DEFAULT_CACHE_DIR): { rootfs: string; stamp: string; lock: string; log: string } {
  return {
    rootfs: path.join(cacheDir, 'rootfs'),
    stamp: path.join(cacheDir, 'rootfs.stamp.json'),
    lock: path.join(cacheDir, 'build.lock'),
    log: path.join(cacheDir, 'build.log'),
  };
}

function readStamp(file: string): RootfsStamp | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as RootfsStamp;
  } catch {
    return undefined;
  }
}

/** Overlay mounts currently using `dir` as their lower layer. */
export function overlaysUsing(dir: string): string[] {
  const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
  return lines.filter((l) => / - overlay /.test(l) && new RegExp(`lowerdir=${escapeRe(dir)}(,|:|$| )`).test(l)).map((l) => l.split(' ')[4]);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function acquireLock(lock: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
      return () => fs.rmSync(lock, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number(fs.readFileSync(lock, 'utf8').trim());
      if (holder && pidAlive(holder)) {
        throw new TisealError(`another process (pid ${holder}) is building the lab rootfs`, { suggestion: 'wait for it to finish, then run the command again' });
      }
      fs.rmSync(lock, { force: true }); // stale
    }
  }
  throw new TisealError(`could not lock ${lock}`);
}

export interface EnsureRootfsResult {
  rootfs: string;
  built: boolean;
  ms: number;
}

/** Return the cached rootfs, building it first when missing or stale. */
export async function ensureRootfs(opts: { cacheDir?: string; log?: (msg: string) => void; force?: boolean } = {}): Promise<EnsureRootfsResult> {
  const started = Date.now();
  const cacheDir = opts.cacheDir ?? DEFAULT_CACHE_DIR;
  const log = opts.log ?? (() => undefined);
  const p = rootfsPaths(cacheDir);
  if (!opts.force && fs.existsSync(path.join(p.rootfs, 'usr/bin/systemctl')) && stampMatches(readStamp(p.stamp))) {
    return { rootfs: p.rootfs, built: false, ms: Date.now() - started };
  }
  fs.mkdirSync(cacheDir, { recursive: true });
  const release = acquireLock(p.lock);
  try {
    const users = fs.existsSync(p.rootfs) ? overlaysUsing(p.rootfs) : [];
    if (users.length > 0) {
      throw new TisealError(`the cached lab rootfs ${p.rootfs} is stale but still used by running hosts (${users.join(', ')})`, {
        suggestion: 'run `npm run lab -- down` first, then `up` rebuilds it',
      });
    }
    const mirror = machineMirror(SUITE);
    if (!mirror) {
      throw new PreflightError(`no Debian ${SUITE} mirror found in /etc/apt/sources.list*`, { suggestion: `add a \`deb <mirror> ${SUITE} main\` source` });
    }
    const tmp = path.join(cacheDir, `rootfs.build-${process.pid}`);
    removeTree(tmp);
    fs.writeFileSync(p.log, `building ${p.rootfs} from ${mirror} at ${new Date().toISOString()}\n`);
    log(`building the lab rootfs with debootstrap from ${mirror} (once; cached in ${cacheDir})`);
    const bootstrap = await run(
      'debootstrap',
      ['--variant=minbase', `--include=${BASE_PACKAGES.join(',')}`, SUITE, tmp, mirror],
      { allowFailure: true, timeoutMs: 30 * 60_000, env: { ...process.env, LC_ALL: 'C' } },
    );
    fs.appendFileSync(p.log, bootstrap.stdout + bootstrap.stderr);
    if (bootstrap.code !== 0) {
      throw new TisealError(`debootstrap failed (exit ${bootstrap.code}); see ${p.log}`, { suggestion: `check that ${mirror} is reachable` });
    }
    log('preparing the rootfs in a chroot (packages, sshd, deploy user tidb)');
    fs.copyFileSync('/etc/resolv.conf', path.join(tmp, 'etc/resolv.conf'));
    const proc = path.join(tmp, 'proc');
    await run('mount', ['-t', 'proc', 'proc', proc]);
    let prep;
    try {
      prep = await run('chroot', [tmp, '/bin/bash', '-s'], { input: PREPARE_SCRIPT, allowFailure: true, timeoutMs: 30 * 60_000, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' } });
    } finally {
      if (isMountPoint(proc)) await run('umount', [proc]);
    }
    fs.appendFileSync(p.log, prep.stdout + prep.stderr);
    if (prep.code !== 0) throw new TisealError(`preparing the lab rootfs failed (exit ${prep.code}); see ${p.log}`);
    fs.writeFileSync(path.join(tmp, 'etc/resolv.conf'), '');
    // Swap in the new tree; the stamp is written last so an interrupted build is rebuilt.
    fs.rmSync(p.stamp, { force: true });
    if (fs.existsSync(p.rootfs)) {
      const old = path.join(cacheDir, `rootfs.old-${process.pid}`);
      fs.renameSync(p.rootfs, old);
      removeTree(old);
    }
    fs.renameSync(tmp, p.rootfs);
    writeFileAtomic(p.stamp, JSON.stringify({ ...desiredStamp(), mirror, builtAt: new Date().toISOString() }, null, 2) + '\n');
    log(`rootfs ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return { rootfs: p.rootfs, built: true, ms: Date.now() - started };
  } finally {
    release();
  }
}
