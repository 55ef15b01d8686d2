/**
 * The lab hosts are real, distinct Debian hosts: systemd, sshd with their own host keys (verified
 * strictly), the deploy user with passwordless sudo, node and the emulators mounted (not the repo), own cgroups.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { LabInfo } from '../../lab';
import { readState } from '../../lab/state';
import { hostnameFor } from '../../lab/subnet';
import { describeLab, ensureLab, ssh, sshOk } from './helpers';
import { secretCopies } from './expect-cluster';

describeLab('lab hosts', () => {
  let info: LabInfo;
  beforeAll(async () => {
    info = await ensureLab();
  }, ensureLab.timeoutMs);

  test('5 hosts from the default topology, each reachable with the lab key under StrictHostKeyChecking=yes', () => {
    expect(info.hosts).toEqual(['10.77.0.11', '10.77.0.12', '10.77.0.13', '10.77.0.14', '10.77.0.15']);
    for (const host of info.hosts) {
      const out = sshOk(info, host, 'hostname; id -u; id -un; sudo -n id -u; systemctl is-system-running; cat /etc/machine-id');
      const [hostname, uid, user, sudoUid, running, machineId] = out.trim().split('\n');
      expect(hostname).toBe(hostnameFor(host));
      expect([uid, user, sudoUid]).toEqual(['1000', 'tidb', '0']);
      expect(running).toBe('running');
      expect(machineId).toMatch(/^[0-9a-f]{32}$/);
    }
  });

  test('machine-ids and SSH host keys are unique per host, and known_hosts holds exactly the real keys', () => {
    const ids = new Set<string>();
    const keys = new Set<string>();
    const known = fs.readFileSync(info.knownHostsFile, 'utf8');
    for (const host of info.hosts) {
      ids.add(sshOk(info, host, 'cat /etc/machine-id').trim());
      const pub = sshOk(info, host, 'cat /etc/ssh/ssh_host_ed25519_key.pub').trim().split(' ').slice(0, 2).join(' ');
      keys.add(pub);
      expect(known).toContain(`${host} ${pub}`);
    }
    expect(ids.size).toBe(info.hosts.length);
    expect(keys.size).toBe(info.hosts.length);
  });

  test('a known_hosts with another host\'s key is refused (host keys are really checked)', () => {
    const [a, b] = info.hosts;
    const lines = fs.readFileSync(info.knownHostsFile, 'utf8').split('\n').filter((l) => l.startsWith(`${b} `));
    const forged = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-kh-')), 'known_hosts');
    fs.writeFileSync(forged, lines.map((l) => l.replace(`${b} `, `${a} `)).join('\n') + '\n');
    try {
      const r = ssh(info, a, 'true', { knownHosts: forged });
      expect(r.code).toBe(255);
      expect(r.stderr).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
    } finally {
      fs.rmSync(path.dirname(forged), { recursive: true, force: true });
    }
  });

  test('/etc/hosts names every lab host; node and only the emulators are mounted, read-only', () => {
    const host = info.hosts[0];
    const hosts = sshOk(info, host, 'cat /etc/hosts');
    for (const h of info.hosts) expect(hosts).toMatch(new RegExp(`^${h.replace(/\./g, '\\.')}\\s+${hostnameFor(h)}$`, 'm'));
    expect(sshOk(info, host, '/usr/local/bin/node -e "process.stdout.write(process.version)"')).toBe(process.version);
    expect(sshOk(info, host, 'test -f /opt/tiseal/dist/lab/emulators/pd-server.js && echo ok').trim()).toBe('ok');
    const w = ssh(info, host, 'sudo -n touch /opt/tiseal/dist/lab/emulators/.lab-write-probe');
    expect(w.code).not.toBe(0);
    expect(w.stderr).toMatch(/Read-only file system/);
    // The repository is not there: no package.json, no src/, no lab state.
    expect(sshOk(info, host, 'ls -A /opt/tiseal').trim().split('\n').sort()).toEqual(['dist', 'node_modules']);
    expect(sshOk(info, host, 'ls -A /opt/tiseal/dist').trim()).toBe('lab');
  });

  test('no host sees the lab\'s own secrets (its SSH private key, under any path)', () => {
    for (const host of info.hosts) expect(`${host}: ${secretCopies(info, host, info.identityFile).join(', ')}`).toBe(`${host}: `);
  }, 120_000);

  test('each host runs in its own cgroup, recorded in the state file with its nspawn PID', () => {
    const state = readState(info.dir)!;
    expect(state.hosts.map((h) => h.host)).toEqual(info.hosts);
    for (const rec of state.hosts) {
      expect(rec.pid).toBeGreaterThan(1);
      expect(fs.readFileSync(`/proc/${rec.pid}/cmdline`, 'utf8')).toContain('systemd-nspawn');
      expect(rec.cgroups.length).toBeGreaterThan(0);
      for (const cg of rec.cgroups) {
        expect(path.basename(cg)).toContain(rec.hostname);
        // The container's systemd lives below the host's own cgroup, not in a shared one.
        expect(fs.readdirSync(cg)).toContain('payload');
      }
      expect(fs.readFileSync(`/proc/${rec.pid}/cgroup`, 'utf8')).toContain(`/${path.basename(rec.cgroups[0])}`);
    }
    expect(new Set(state.hosts.flatMap((h) => h.cgroups)).size).toBe(state.hosts.flatMap((h) => h.cgroups).length);
  });

  test('tiseal.env points tiseal at the lab', () => {
    const env = fs.readFileSync(info.envFile, 'utf8');
    expect(env).toContain(`TISEAL_IDENTITY_FILE=${info.identityFile}`);
    expect(env).toContain(`TISEAL_KNOWN_HOSTS=${info.knownHostsFile}`);
    expect(env).toContain('TISEAL_SSH_USER=tidb');
    expect(env).toContain(`TISEAL_STATE_DIR=${info.stateDir}`);
    expect(fs.existsSync(info.topologyFile)).toBe(true);
  });
});
