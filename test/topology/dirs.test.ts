/**
 * TiUP's directory and default rules, one row per rule (pkg/cluster/spec/spec.go
 * setCustomDefaults, instance.go DataDir/LogDir, Abs).
 */
import { parseTopology, type Instance } from '../../src/topology';

function only(yaml: string, role = 'pd'): Instance {
  const t = parseTopology(yaml, 'dirs.yaml');
  const hits = t.instances.filter((i) => i.role === role);
  if (hits.length !== 1) throw new Error(`expected one ${role}, got ${hits.length}`);
  return hits[0];
}

const pd = (global: string, entry: string) => `${global}\npd_servers:\n  - host: 10.0.0.1\n${entry}`;

describe('deploy/data/log dirs', () => {
  test.each<[string, string, string, Partial<Instance>]>([
    [
      'absolute global dirs',
      'global:\n  deploy_dir: /tidb-deploy\n  data_dir: /tidb-data',
      '',
      { deployDir: '/tidb-deploy/pd-2379', dataDir: '/tidb-data/pd-2379', logDir: '/tidb-deploy/pd-2379/log' },
    ],
    [
      'no global section: relative defaults under /home/tidb, data under the deploy dir',
      '',
      '',
      { deployDir: '/home/tidb/deploy/pd-2379', dataDir: '/home/tidb/deploy/pd-2379/data', logDir: '/home/tidb/deploy/pd-2379/log' },
    ],
    [
      'relative global dirs live under the user home, data under each deploy dir',
      'global:\n  user: admin\n  deploy_dir: tidb-deploy\n  data_dir: tidb-data',
      '',
      { deployDir: '/home/admin/tidb-deploy/pd-2379', dataDir: '/home/admin/tidb-deploy/pd-2379/tidb-data', logDir: '/home/admin/tidb-deploy/pd-2379/log' },
    ],
    [
      'instance absolute data_dir is kept as is',
      'global:\n  deploy_dir: /tidb-deploy\n  data_dir: /tidb-data',
      '    data_dir: /ssd/pd\n',
      { deployDir: '/tidb-deploy/pd-2379', dataDir: '/ssd/pd' },
    ],
    [
      'instance relative data_dir goes under the deploy dir',
      'global:\n  deploy_dir: /tidb-deploy\n  data_dir: /tidb-data',
      '    data_dir: mydata\n',
      { dataDir: '/tidb-deploy/pd-2379/mydata' },
    ],
    [
      'instance relative deploy_dir goes under the user home, not under global.deploy_dir',
      'global:\n  deploy_dir: /tidb-deploy\n  data_dir: /tidb-data',
      '    deploy_dir: custom/pd\n',
      { deployDir: '/home/tidb/custom/pd', dataDir: '/tidb-data/pd-2379', logDir: '/home/tidb/custom/pd/log' },
    ],
    [
      'instance log_dir relative and absolute',
      'global:\n  deploy_dir: /d',
      '    log_dir: logs\n',
      { logDir: '/d/pd-2379/logs' },
    ],
    ['instance absolute log_dir', 'global:\n  deploy_dir: /d', '    log_dir: /var/log/pd\n', { logDir: '/var/log/pd' }],
    ['absolute global log_dir gets <role>-<port>', 'global:\n  deploy_dir: /d\n  log_dir: /var/log/tidb', '', { logDir: '/var/log/tidb/pd-2379' }],
    ['relative global log_dir goes under each deploy dir', 'global:\n  deploy_dir: /d\n  log_dir: logs', '', { logDir: '/d/pd-2379/logs' }],
    ['trailing slashes are cleaned', 'global:\n  deploy_dir: /d/', '    deploy_dir: /x/pd//\n    data_dir: /y/data/\n', { deployDir: '/x/pd', dataDir: '/y/data' }],
    ['dir names follow a custom client_port', 'global:\n  deploy_dir: /d\n  data_dir: /e', '    client_port: 12379\n', { id: 'pd-12379', deployDir: '/d/pd-12379', dataDir: '/e/pd-12379', unit: 'pd-12379.service', name: 'pd-10.0.0.1-12379' }],
    ['port 0 means the default, as creasty/defaults fills zero values', '', '    client_port: 0\n', { port: 2379, ports: { client_port: 2379, peer_port: 2380 } }],
  ])('%s', (_name, global, entry, expected) => {
    expect(only(pd(global, entry))).toMatchObject(expected);
  });

  test('tiflash multi-disk data_dir: relative parts under the deploy dir, absolute kept', () => {
    const i = only('pd_servers:\n  - host: h\ntiflash_servers:\n  - host: h\n    data_dir: "data1,/data/tiflash-data"\n', 'tiflash');
    expect(i.dataDirs).toEqual(['/home/tidb/deploy/tiflash-9000/data1', '/data/tiflash-data']);
    expect(i.dataDir).toBe('/home/tidb/deploy/tiflash-9000/data1');
  });

  test('tiflash storage.latest/main.dir in config override data_dir (latest first, rest sorted)', () => {
    const i = only(
      [
        'pd_servers:\n  - host: h',
        'tiflash_servers:',
        '  - host: h',
        '    data_dir: /ignored',
        '    config:',
        '      storage.main.dir: [/nvme2/main, /nvme1/main]',
        '      storage.latest.dir: [/nvme0/latest]',
      ].join('\n'),
      'tiflash',
    );
    expect(i.dataDirs).toEqual(['/nvme0/latest', '/nvme1/main', '/nvme2/main']);
  });

  test('roles without a data dir field have none, even with global.data_dir', () => {
    const t = parseTopology('global:\n  data_dir: /data\npd_servers:\n  - host: h\ntidb_servers:\n  - host: h\ngrafana_servers:\n  - host: h\n', 'x.yaml');
    for (const i of t.instances.filter((x) => x.role !== 'pd')) expect(i.dataDir).toBeUndefined();
  });

  test('tiproxy has no log_dir field: it always logs to <deploy>/log', () => {
    const i = only('global:\n  deploy_dir: /d\n  log_dir: /var/log/tidb\npd_servers:\n  - host: h\ntiproxy_servers:\n  - host: h\n', 'tiproxy');
    expect(i).toMatchObject({ deployDir: '/d/tiproxy-6000', logDir: '/d/tiproxy-6000/log', ports: { port: 6000, status_port: 3080 }, unit: 'tiproxy-6000.service', configFiles: ['/d/tiproxy-6000/conf/tiproxy.toml'] });
  });
});

describe('per-instance fields', () => {
  test('ssh_port, manage_host, listen_host, advertise, numa_node, arch override global', () => {
    const t = parseTopology(
      [
        'global:',
        '  ssh_port: 2222',
        '  listen_host: 10.0.0.1',
        '  arch: x86_64',
        'pd_servers:',
        '  - host: 10.0.0.1',
        '    ssh_port: 22022',
        '    manage_host: 192.168.0.1',
        '    listen_host: 0.0.0.0',
        '    advertise_client_addr: https://pd.example:2379',
        '    numa_node: 0',
        '    arch: aarch64',
        '    name: pd-a',
        'tidb_servers:',
        '  - host: 10.0.0.2',
      ].join('\n'),
      'f.yaml',
    );
    const [p, d] = t.instances;
    expect(p).toMatchObject({
      sshPort: 22022,
      manageHost: '192.168.0.1',
      listenHost: '0.0.0.0',
      advertise: { advertise_client_addr: 'https://pd.example:2379' },
      numaNode: '0',
      arch: 'arm64',
      name: 'pd-a',
    });
    expect(d).toMatchObject({ sshPort: 2222, listenHost: '10.0.0.1', arch: 'amd64' });
    expect(t.hosts).toEqual([
      { host: '192.168.0.1', sshPort: 22022 },
      { host: '10.0.0.2', sshPort: 2222 },
    ]);
  });

  test('IPv6 host listens on :: by default', () => {
    const t = parseTopology('pd_servers:\n  - host: "fd00::1"\n', 'f.yaml');
    expect(t.instances[0].listenHost).toBe('::');
  });

  test('prometheus ng_port -1 disables NgMonitoring', () => {
    const t = parseTopology('pd_servers:\n  - host: h\nmonitoring_servers:\n  - host: h\n    ng_port: -1\n', 'f.yaml');
    const prom = t.instances.find((i) => i.role === 'prometheus')!;
    expect(prom.ports).toEqual({ port: 9090 });
    expect(prom.configFiles).toEqual(['/home/tidb/deploy/prometheus-9090/conf/prometheus.yml']);
  });

  test('tiflash http_port is reserved only before v7.1.0 or when written', () => {
    const old = parseTopology('component_versions:\n  tiflash: v6.5.0\npd_servers:\n  - host: h\ntiflash_servers:\n  - host: h\n', 'f.yaml');
    expect(old.instances[1].ports.http_port).toBe(8123);
    const modern = parseTopology('component_versions:\n  tiflash: v7.5.0\npd_servers:\n  - host: h\ntiflash_servers:\n  - host: h\n', 'f.yaml');
    expect(modern.instances[1].ports.http_port).toBeUndefined();
    const written = parseTopology('pd_servers:\n  - host: h\ntiflash_servers:\n  - host: h\n    http_port: 8124\n', 'f.yaml');
    expect(written.instances[1].ports.http_port).toBe(8124);
  });

  test('a TiUP meta.yaml is unwrapped and its version kept', () => {
    const t = parseTopology('user: tidb\ntidb_version: v7.5.1\ntopology:\n  global:\n    deploy_dir: /d\n  pd_servers:\n    - host: h\n', 'meta.yaml');
    expect(t.clusterVersion).toBe('v7.5.1');
    expect(t.instances[0]).toMatchObject({ deployDir: '/d/pd-2379', source: { file: 'meta.yaml', line: 7, column: 7 } });
  });
});
