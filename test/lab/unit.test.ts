/** Pure parts of the lab (no root needed): subnet rules, apt mirror discovery, generated scripts. */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { deployScript, instanceFiles, wipeScript } from '../../lab/deploy';
import { loadLabTopology } from '../../lab';
import { parseDeb822Format, parseListFormat, pickMirror, readAptSources } from '../../lab/mirror';
import { desiredStamp, stampMatches } from '../../lab/rootfs';
import { gatewayAddress, hostnameFor, inSubnet, parseSubnet } from '../../lab/subnet';
import { etcHostsFor } from '../../lab/host';
import { loadTopology } from '../../src/topology';

const ROOT = path.join(__dirname, '..', '..');
const DEFAULT = path.join(ROOT, 'lab', 'topologies', 'default.yaml');

describe('subnet', () => {
  test('parse, membership, gateway', () => {
    const s = parseSubnet('10.77.0.9/24');
    expect(s.cidr).toBe('10.77.0.0/24');
    expect(gatewayAddress(s)).toBe('10.77.0.1');
    expect(inSubnet('10.77.0.11', s)).toBe(true);
    expect(inSubnet('10.77.1.11', s)).toBe(false);
    expect(inSubnet('10.77.0.0', s)).toBe(false); // network address
    expect(inSubnet('10.77.0.255', s)).toBe(false); // broadcast
    expect(inSubnet('tidb-1', s)).toBe(false);
    expect(() => parseSubnet('10.77.0.0')).toThrow(/invalid lab subnet/);
    expect(() => parseSubnet('300.1.1.1/24')).toThrow(/invalid lab subnet/);
    expect(hostnameFor('10.77.0.11')).toBe('tilab-10-77-0-11');
  });

  test('a topology host outside the subnet is a one-line error naming the file and the subnet', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-lab-topo-'));
    const file = path.join(dir, 'outside.yaml');
    fs.writeFileSync(file, 'pd_servers:\n  - host: 10.77.0.11\ntikv_servers:\n  - host: 192.168.5.3\n');
    try {
      expect(() => loadLabTopology(file, '10.77.0.0/24')).toThrow(`${file}: host 192.168.5.3 is not an address inside the lab subnet 10.77.0.0/24`);
      fs.writeFileSync(file, 'pd_servers:\n  - host: 10.77.0.11\nmonitoring_servers:\n  - host: 10.77.0.11\n');
      expect(() => loadLabTopology(file, '10.77.0.0/24')).toThrow(/the lab cannot run prometheus/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(loadLabTopology(DEFAULT, '10.77.0.0/24').hosts).toHaveLength(5);
  });
});

describe('Debian mirror from apt sources', () => {
  test('one-line and deb822 formats; -security/-updates and disabled entries are not the mirror', () => {
    const list = parseListFormat('# c\ndeb-src http://src/ bookworm main\ndeb [arch=amd64] http://m1/debian bookworm main contrib\n', 'a.list');
    expect(list).toEqual([{ uri: 'http://m1/debian', suites: ['bookworm'], components: ['main', 'contrib'], file: 'a.list' }]);
    const d822 = parseDeb822Format(
      ['Types: deb', 'URIs: http://sec/debian-security', 'Suites: bookworm-security', 'Components: main', '', 'Types: deb', 'Enabled: no', 'URIs: http://off/', 'Suites: bookworm', 'Components: main', '', 'Types: deb deb-src', 'URIs: http://deb.example/debian/', 'Suites: bookworm bookworm-updates', 'Components: main'].join('\n'),
      'd.sources',
    );
    expect(pickMirror(d822, 'bookworm')).toBe('http://deb.example/debian');
    expect(pickMirror([...d822, ...list], 'trixie')).toBeUndefined();
  });

  test('reads a sources tree like /etc/apt (ignoring other extensions)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-apt-'));
    fs.mkdirSync(path.join(dir, 'sources.list.d'));
    fs.writeFileSync(path.join(dir, 'sources.list.d', 'x.sources.disabled'), 'Types: deb\nURIs: http://no/\nSuites: bookworm\nComponents: main\n');
    fs.writeFileSync(path.join(dir, 'sources.list.d', 'debian.sources'), 'Types: deb\nURIs: http://yes/debian\nSuites: bookworm\nComponents: main\n');
    try {
      expect(pickMirror(readAptSources(dir), 'bookworm')).toBe('http://yes/debian');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('rootfs stamp: a changed package list or preparation script means rebuild', () => {
  const want = desiredStamp();
  expect(stampMatches({ ...want })).toBe(true);
  expect(stampMatches({ ...want, packages: want.packages.slice(1) })).toBe(false);
  expect(stampMatches({ ...want, prepareSha256: '0'.repeat(64) })).toBe(false);
  expect(stampMatches(undefined)).toBe(false);
  expect(want.packages).toEqual(expect.arrayContaining(['systemd', 'openssh-server', 'sudo', 'etcd-server', 'etcd-client', 'libstdc++6', 'curl', 'openssl', 'ca-certificates', 'dbus', 'iproute2', 'systemd-sysv']));
});

describe('deploy and wipe scripts', () => {
  const t = loadTopology(DEFAULT);
  test.each(t.hosts.map((h) => h.host))('%s: valid bash that writes every TiUP file', (host) => {
    const s = deployScript(t, host, 'v8.5.1');
    execFileSync('bash', ['-n'], { input: s });
    for (const inst of t.instances.filter((i) => i.host === host)) {
      for (const f of instanceFiles(inst, t, 'v8.5.1')) expect(s).toContain(`mv -f ${f.path.replace(/'/g, '')}.tiseal-tmp ${f.path}`);
      expect(s).toContain(`systemctl enable`);
    }
    execFileSync('bash', ['-n'], { input: wipeScript(t, host) });
  });

  test('files per instance: emulator wrapper at TiUP\'s binary path, run script, unit, configs', () => {
    const flash = t.instances.find((i) => i.role === 'tiflash')!;
    const files = instanceFiles(flash, t, 'v8.5.1');
    expect(files.map((f) => f.path)).toEqual([
      '/tidb-deploy/tiflash-9000/bin/tiflash/tiflash',
      '/tidb-deploy/tiflash-9000/scripts/run_tiflash.sh',
      '/etc/systemd/system/tiflash-9000.service',
      '/tidb-deploy/tiflash-9000/conf/tiflash.toml',
      '/tidb-deploy/tiflash-9000/conf/tiflash-learner.toml',
    ]);
    expect(files[0].content).toContain('export TISEAL_EMULATED_VERSION=v8.5.1');
    expect(files[0].content).toContain('/opt/tiseal/dist/lab/emulators/tiflash.js');
    expect(files.find((f) => f.path.startsWith('/etc/'))?.owner).toBe('root');
  });

  test('the deploy script really lays out the files (run against a scratch root)', () => {
    // Rewrite absolute paths into a temp dir and stub the root-only commands.
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-deploy-'));
    try {
      const s = deployScript(t, '10.77.0.15', 'v8.5.1')
        .replace(/(['\s])\/(tidb-deploy|tidb-data|etc\/systemd)/g, `$1${root}/$2`)
        .replace(/chown [^ ]+ /g, 'true ')
        .replace(/-o \S+ -g \S+ /g, '')
        .replace(/\bchown "\$U:\$G" "\$p"/g, 'true')
        .replace(/^systemctl .*$/gm, 'true');
      execFileSync('bash', ['-e'], { input: s });
      const run = fs.statSync(path.join(root, 'tidb-deploy/tiflash-9000/scripts/run_tiflash.sh'));
      expect(run.mode & 0o777).toBe(0o755);
      expect(fs.readFileSync(path.join(root, 'etc/systemd/system/tiflash-9000.service'), 'utf8')).toContain("ExecStart=/bin/bash -c '/tidb-deploy/tiflash-9000/scripts/run_tiflash.sh'");
      expect(fs.existsSync(path.join(root, 'tidb-data/tiflash-9000'))).toBe(true);
      expect(fs.existsSync(path.join(root, 'tidb-deploy/tiflash-9000/log'))).toBe(true);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});

test('/etc/hosts for the hosts', () => {
  expect(etcHostsFor([{ ip: '10.77.0.11', hostname: 'tilab-10-77-0-11' }])).toBe('127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.77.0.11\ttilab-10-77-0-11\n');
});
