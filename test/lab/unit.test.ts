/** Pure parts of the lab (no root needed): subnet rules, apt mirror discovery, generated scripts. */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { deployScript, instanceFiles, wipeScript } from '../../lab/deploy';
import { agentFiles, prometheusYml } from '../../lab/monitoring';
import { applyPrometheusTls } from '../../src/components/prometheus';
import { tlsPaths } from '../../src/components/tls-paths';
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
      fs.writeFileSync(file, 'pd_servers:\n  - host: 10.77.0.11\ngrafana_servers:\n  - host: 10.77.0.11\n');
      expect(() => loadLabTopology(file, '10.77.0.0/24')).toThrow(/the lab cannot run grafana/);
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
  expect(want.packages).toEqual(expect.arrayContaining(['prometheus', 'prometheus-node-exporter', 'prometheus-blackbox-exporter', 'systemd', 'openssh-server', 'sudo', 'etcd-server', 'etcd-client', 'libstdc++6', 'curl', 'openssl', 'ca-certificates', 'dbus', 'iproute2', 'systemd-sysv']));
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

  test('monitoring as TiUP deploys it: Prometheus on its host, both agents on every host, Debian\'s real binaries', () => {
    const prom = t.instances.find((i) => i.role === 'prometheus')!;
    expect(instanceFiles(prom, t, 'v8.5.1').map((f) => `${f.path} ${f.mode.toString(8)} ${f.owner}`)).toEqual([
      '/tidb-deploy/prometheus-9090/bin/prometheus/prometheus 755 user',
      '/tidb-deploy/prometheus-9090/scripts/run_prometheus.sh 755 user',
      '/tidb-deploy/prometheus-9090/conf/prometheus.yml 644 user',
      '/etc/systemd/system/prometheus-9090.service 644 root',
      '/tidb-deploy/prometheus-9090/bin/ng-monitoring-server 755 user',
      '/tidb-deploy/prometheus-9090/conf/ngmonitoring.toml 644 user',
    ]);
    const [bin, run, , unit, ngBin, ngToml] = instanceFiles(prom, t, 'v8.5.1');
    expect(bin.content).toMatch(/^exec \/usr\/bin\/prometheus "\$@"$/m);
    execFileSync('bash', ['-n'], { input: run.content });
    // TiUP's run_prometheus.sh.tpl: ng-wrapper.sh written when the binary exists, started with EnableNG.
    expect(ngBin.content).toContain('/opt/tiseal/dist/lab/emulators/ngmonitoring.js');
    expect(run.content).toContain('    bin/ng-monitoring-server \\\n        --config /tidb-deploy/prometheus-9090/conf/ngmonitoring.toml \\\n');
    expect(run.content).toMatch(/^fi\n\/bin\/bash scripts\/ng-wrapper\.sh &\n\nexec > >\(tee/m);
    expect(ngToml.content).toMatch(/^address = "0\.0\.0\.0:12020"\nadvertise-address = "10\.77\.0\.15:12020"$/m);
    expect(ngToml.content).toContain('endpoints = ["10.77.0.11:2379","10.77.0.12:2379","10.77.0.13:2379"]\n\n[storage]\npath = "/tidb-data/prometheus-9090"');
    expect(ngToml.content.endsWith('"')).toBe(true);
    expect(run.content).toContain('--storage.tsdb.path="/tidb-data/prometheus-9090"');
    expect(unit.content).toContain("ExecStart=/bin/bash -c '/tidb-deploy/prometheus-9090/scripts/run_prometheus.sh'");
    for (const host of t.hosts.map((h) => h.host)) {
      const s = deployScript(t, host, 'v8.5.1');
      for (const f of ['scripts/run_node_exporter.sh', 'scripts/run_blackbox_exporter.sh', 'conf/blackbox.yml']) expect(s).toContain(`/tidb-deploy/monitor-9100/${f}`);
      expect(s).toMatch(/systemctl enable .*'?node_exporter-9100\.service'? '?blackbox_exporter-9115\.service'?/);
      expect(s.includes('prometheus-9090')).toBe(host === prom.host);
    }
    execFileSync('bash', ['-n'], { input: agentFiles(t).files.filter((f) => f.path.endsWith('.sh')).map((f) => f.content).join('\n') });
    // TiUP's GrantCapNetRaw: blackbox's icmp prober needs a raw socket.
    expect(agentFiles(t).files.find((f) => f.path.endsWith('blackbox_exporter-9115.service'))!.content).toMatch(/^AmbientCapabilities=CAP_NET_RAW$/m);
  });

  test('prometheus.yml in TiUP\'s layout: a job per component on its metrics port, and tiseal switches exactly those', () => {
    const prom = t.instances.find((i) => i.role === 'prometheus')!;
    const text = prometheusYml(prom, t, 'default');
    type Job = { job_name: string; scheme?: string; scrape_interval?: string; static_configs?: Array<{ targets: string[] | null }> };
    const doc = yaml.load(text) as { global: Record<string, unknown>; scrape_configs: Job[] };
    expect(doc.global.scrape_interval).toBe('2s');
    const targets = (j: Job) => (j.static_configs ?? []).flatMap((c) => c.targets ?? []);
    const jobs = Object.fromEntries(doc.scrape_configs.map((j) => [j.job_name, targets(j)]));
    expect(jobs.pd).toEqual(['10.77.0.11:2379', '10.77.0.12:2379', '10.77.0.13:2379']);
    expect(jobs.tikv).toEqual(['10.77.0.11:20180', '10.77.0.12:20180', '10.77.0.13:20180']);
    expect(jobs.tidb).toEqual(['10.77.0.14:10080']);
    expect(jobs.tiflash).toEqual(['10.77.0.15:8234', '10.77.0.15:20292']);
    expect(jobs.ticdc).toEqual(['10.77.0.14:8300']);
    expect(jobs['ng-monitoring']).toEqual(['10.77.0.15:12020']);
    expect(jobs['overwritten-nodes']).toEqual(['10.77.0.11:9100', '10.77.0.12:9100', '10.77.0.13:9100', '10.77.0.14:9100', '10.77.0.15:9100']);
    expect(jobs.tiproxy).toEqual([]);
    expect(Object.keys(jobs).filter((j) => j.endsWith('_icmp'))).toHaveLength(5);
    const on = yaml.load(applyPrometheusTls(text, tlsPaths(prom))) as { scrape_configs: Job[] };
    expect(on.scrape_configs.filter((j) => j.scheme === 'https').map((j) => j.job_name).sort()).toEqual(['pd', 'ticdc', 'tidb', 'tiflash', 'tikv']);
    expect(yaml.load(applyPrometheusTls(yaml.dump(on), null))).toEqual(doc);
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
