/** The display table and the `--json` form. */
import { parseTopology, renderInstanceTable, topologyToJson } from '../../src/topology';

const t = parseTopology(
  [
    'global:',
    '  deploy_dir: /tidb-deploy',
    '  data_dir: /tidb-data',
    'pd_servers:',
    '  - host: 10.0.1.11',
    'tikv_servers:',
    '  - host: 10.0.1.12',
    'tidb_servers:',
    '  - host: "fd00::13"',
    'tiflash_servers:',
    '  - host: 10.0.1.14',
    '    data_dir: /a,/b',
    'kvcdc_servers:',
    '  - host: 10.0.1.15',
  ].join('\n'),
  'r.yaml',
);

describe('renderInstanceTable', () => {
  test('aligned columns like tiup cluster display, unmanaged roles included', () => {
    expect(renderInstanceTable(t)).toBe(
      [
        'ID               Role      Host       Ports                       Deploy dir                  Data dir                  Unit',
        '--               ----      ----       -----                       ----------                  --------                  ----',
        '10.0.1.11:2379   pd        10.0.1.11  2379/2380                   /tidb-deploy/pd-2379        /tidb-data/pd-2379        pd-2379.service',
        '10.0.1.12:20160  tikv      10.0.1.12  20160/20180                 /tidb-deploy/tikv-20160     /tidb-data/tikv-20160     tikv-20160.service',
        '[fd00::13]:4000  tidb      fd00::13   4000/10080                  /tidb-deploy/tidb-4000      -                         tidb-4000.service',
        '10.0.1.14:9000   tiflash   10.0.1.14  9000/3930/20170/20292/8234  /tidb-deploy/tiflash-9000   /a,/b                     tiflash-9000.service',
        '10.0.1.15:8600   tikv-cdc  10.0.1.15  8600                        /tidb-deploy/tikv-cdc-8600  /tidb-data/tikv-cdc-8600  tikv-cdc-8600.service',
      ].join('\n'),
    );
  });
});

describe('topologyToJson', () => {
  const j = topologyToJson(t);

  test('documented top-level fields in a stable order', () => {
    expect(Object.keys(j)).toEqual(['file', 'clusterVersion', 'global', 'hosts', 'instances', 'monitored', 'serverConfigs', 'componentVersions', 'warnings']);
    expect(j.global).toEqual({
      user: 'tidb',
      group: null,
      sshPort: 22,
      deployDir: '/tidb-deploy',
      dataDir: '/tidb-data',
      logDir: null,
      arch: 'amd64',
      os: 'linux',
      systemdMode: 'system',
      listenHost: null,
      enableTls: false,
    });
    expect(j.hosts.map((h) => h.host)).toEqual(['10.0.1.11', '10.0.1.12', 'fd00::13', '10.0.1.14']);
  });

  test('instances carry resolved fields and survive JSON', () => {
    const parsed = JSON.parse(JSON.stringify(j));
    expect(parsed.instances).toHaveLength(5);
    expect(parsed.instances[0]).toEqual({
      id: '10.0.1.11:2379',
      role: 'pd',
      roleKey: 'pd_servers',
      managed: true,
      host: '10.0.1.11',
      manageHost: null,
      sshPort: 22,
      port: 2379,
      ports: { client_port: 2379, peer_port: 2380 },
      name: 'pd-10.0.1.11-2379',
      deployDir: '/tidb-deploy/pd-2379',
      dataDir: '/tidb-data/pd-2379',
      dataDirs: ['/tidb-data/pd-2379'],
      logDir: '/tidb-deploy/pd-2379/log',
      unit: 'pd-2379.service',
      runScript: '/tidb-deploy/pd-2379/scripts/run_pd.sh',
      configFiles: ['/tidb-deploy/pd-2379/conf/pd.toml'],
      certName: 'pd',
      listenHost: '0.0.0.0',
      advertise: {},
      numaNode: null,
      os: 'linux',
      arch: 'amd64',
      config: {},
      source: { file: 'r.yaml', line: 5, column: 5 },
    });
    expect(parsed.instances[4]).toMatchObject({ role: 'tikv-cdc', managed: false, dataDir: '/tidb-data/tikv-cdc-8600' });
    expect(parsed.warnings).toEqual([expect.objectContaining({ line: 13, column: 1, severity: 'warning' })]);
  });
});
