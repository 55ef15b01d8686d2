/**
 * TiUP's own example topologies (copied from pingcap/tiup embed/examples/cluster) must parse,
 * with TiUP's defaults resolved as TiUP resolves them.
 */
import * as path from 'path';
import { loadTopology, pdClientUrls, pdEndpoints, instancesByRole, pdInstances, type Instance, type Topology } from '../../src/topology';

const fixture = (name: string) => path.join(__dirname, '..', 'fixtures', 'tiup-examples', name);

function countByRole(t: Topology): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of [...t.instances, ...(t.otherInstances ?? [])]) out[i.role] = (out[i.role] ?? 0) + 1;
  return out;
}

function find(t: Topology, role: string, host: string, port?: number): Instance {
  const hit = t.instances.find((i) => i.role === role && i.host === host && (port === undefined || i.port === port));
  if (!hit) throw new Error(`no ${role} on ${host}:${port}`);
  return hit;
}

describe('TiUP example topologies', () => {
  test.each([
    ['minimal.yaml', { pd: 3, tidb: 3, tikv: 3, tiflash: 2, prometheus: 1, grafana: 1, alertmanager: 1 }],
    ['multi-dc.yaml', { pd: 3, tidb: 3, tikv: 5, tiflash: 2, prometheus: 1, grafana: 1, alertmanager: 1 }],
    ['topology.example.yaml', { pd: 3, tidb: 4, tikv: 6, tiflash: 4, 'tikv-cdc': 2, prometheus: 1, grafana: 1, alertmanager: 1 }],
  ])('%s parses with the expected instances per role', (file, expected) => {
    const t = loadTopology(fixture(file));
    expect(countByRole(t)).toEqual(expected);
    expect(t.warnings.filter((w) => w.message.startsWith('unknown'))).toEqual([]);
  });

  describe('minimal.yaml defaults', () => {
    const t = loadTopology(fixture('minimal.yaml'));

    test('global section', () => {
      expect(t.global).toEqual({
        user: 'tidb',
        sshPort: 22,
        deployDir: '/tidb-deploy',
        dataDir: '/tidb-data',
        arch: 'amd64',
        os: 'linux',
        systemdMode: 'system',
        enableTls: false,
        listenHost: '0.0.0.0',
      });
      expect(t.monitored).toMatchObject({
        node_exporter_port: 9100,
        blackbox_exporter_port: 9115,
        deploy_dir: '/tidb-deploy/monitor-9100',
        data_dir: '/tidb-data/monitor-9100',
        log_dir: '/tidb-deploy/monitor-9100/log',
      });
    });

    test('pd on 10.0.1.11', () => {
      const pd = find(t, 'pd', '10.0.1.11');
      expect(pd).toMatchObject({
        role: 'pd',
        roleKey: 'pd_servers',
        id: 'pd-2379',
        host: '10.0.1.11',
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
        config: {},
        os: 'linux',
        arch: 'amd64',
      });
      expect(pd.manageHost).toBeUndefined();
      expect(pd.source).toEqual({ file: fixture('minimal.yaml'), line: 69, column: 5 });
      expect(pd.raw).toEqual({ host: '10.0.1.11' });
    });

    test.each<[string, string, Partial<Instance>]>([
      ['tikv', '10.0.1.17', { id: 'tikv-20160', port: 20160, ports: { port: 20160, status_port: 20180 }, deployDir: '/tidb-deploy/tikv-20160', dataDir: '/tidb-data/tikv-20160', logDir: '/tidb-deploy/tikv-20160/log', unit: 'tikv-20160.service', runScript: '/tidb-deploy/tikv-20160/scripts/run_tikv.sh', configFiles: ['/tidb-deploy/tikv-20160/conf/tikv.toml'], certName: 'tikv' }],
      ['tidb', '10.0.1.14', { id: 'tidb-4000', port: 4000, ports: { port: 4000, status_port: 10080 }, deployDir: '/tidb-deploy/tidb-4000', logDir: '/tidb-deploy/tidb-4000/log', unit: 'tidb-4000.service', configFiles: ['/tidb-deploy/tidb-4000/conf/tidb.toml'], certName: 'tidb' }],
      ['tiflash', '10.0.1.20', { id: 'tiflash-9000', port: 9000, ports: { tcp_port: 9000, flash_service_port: 3930, flash_proxy_port: 20170, flash_proxy_status_port: 20292, metrics_port: 8234 }, deployDir: '/tidb-deploy/tiflash-9000', dataDir: '/tidb-data/tiflash-9000', unit: 'tiflash-9000.service', configFiles: ['/tidb-deploy/tiflash-9000/conf/tiflash.toml', '/tidb-deploy/tiflash-9000/conf/tiflash-learner.toml'], certName: 'tiflash', learnerConfig: {} }],
      ['prometheus', '10.0.1.22', { id: 'prometheus-9090', port: 9090, ports: { port: 9090, ng_port: 12020 }, deployDir: '/tidb-deploy/prometheus-9090', dataDir: '/tidb-data/prometheus-9090', unit: 'prometheus-9090.service', runScript: '/tidb-deploy/prometheus-9090/scripts/run_prometheus.sh', configFiles: ['/tidb-deploy/prometheus-9090/conf/prometheus.yml', '/tidb-deploy/prometheus-9090/conf/ngmonitoring.toml'], certName: 'prometheus' }],
      ['grafana', '10.0.1.22', { id: 'grafana-3000', port: 3000, ports: { port: 3000 }, deployDir: '/tidb-deploy/grafana-3000', logDir: '/tidb-deploy/grafana-3000/log', unit: 'grafana-3000.service', configFiles: ['/tidb-deploy/grafana-3000/conf/grafana.ini'], certName: 'grafana' }],
      ['alertmanager', '10.0.1.22', { id: 'alertmanager-9093', port: 9093, ports: { web_port: 9093, cluster_port: 9094 }, deployDir: '/tidb-deploy/alertmanager-9093', dataDir: '/tidb-data/alertmanager-9093', unit: 'alertmanager-9093.service', configFiles: ['/tidb-deploy/alertmanager-9093/conf/alertmanager.yml'], certName: 'alertmanager' }],
    ])('%s on %s gets TiUP defaults', (role, host, expected) => {
      expect(find(t, role, host)).toMatchObject(expected);
    });

    test('roles without data have no data dir', () => {
      for (const role of ['tidb', 'grafana'] as const) {
        for (const i of instancesByRole(t, role)) {
          expect(i.dataDir).toBeUndefined();
          expect(i.dataDirs).toBeUndefined();
        }
      }
    });

    test('instances come in TiUP start order, file order within a role', () => {
      expect(t.instances.map((i) => `${i.role}@${i.host}`)).toEqual([
        'pd@10.0.1.11', 'pd@10.0.1.12', 'pd@10.0.1.13',
        'tikv@10.0.1.17', 'tikv@10.0.1.18', 'tikv@10.0.1.19',
        'tidb@10.0.1.14', 'tidb@10.0.1.15', 'tidb@10.0.1.16',
        'tiflash@10.0.1.20', 'tiflash@10.0.1.21',
        'prometheus@10.0.1.22', 'grafana@10.0.1.22', 'alertmanager@10.0.1.22',
      ]);
    });

    test('hosts are distinct SSH targets in first-seen order', () => {
      expect(t.hosts).toEqual(
        ['11', '12', '13', '17', '18', '19', '14', '15', '16', '20', '21', '22'].map((n) => ({ host: `10.0.1.${n}`, sshPort: 22 })),
      );
    });

    test('PD helpers', () => {
      expect(pdInstances(t).map((i) => i.name)).toEqual(['pd-10.0.1.11-2379', 'pd-10.0.1.12-2379', 'pd-10.0.1.13-2379']);
      expect(pdEndpoints(t)).toEqual(['10.0.1.11:2379', '10.0.1.12:2379', '10.0.1.13:2379']);
      expect(pdClientUrls(t, 'https')).toEqual(['https://10.0.1.11:2379', 'https://10.0.1.12:2379', 'https://10.0.1.13:2379']);
      expect(pdClientUrls(t, 'http')[0]).toBe('http://10.0.1.11:2379');
    });
  });

  describe('multi-dc.yaml per-instance overrides', () => {
    const t = loadTopology(fixture('multi-dc.yaml'));

    test('server_configs kept as written', () => {
      expect(t.serverConfigs.tikv).toEqual({ 'server.grpc-compression-type': 'gzip' });
      expect(t.serverConfigs.pd).toEqual({
        'replication.location-labels': ['zone', 'dc', 'rack', 'host'],
        'replication.max-replicas': 5,
        'label-property': { 'reject-leader': [{ key: 'dc', value: 'sha' }] },
      });
    });

    test.each([
      ['10.0.1.19', { zone: 'bj', dc: 'bja', rack: 'rack1', host: 'host1' }],
      ['10.0.1.21', { zone: 'bj', dc: 'bjb', rack: 'rack1', host: 'host1' }],
      ['10.0.1.23', { zone: 'sh', dc: 'sha', rack: 'rack1', host: 'host1' }],
    ])('tikv %s carries its own labels', (host, labels) => {
      expect(find(t, 'tikv', host).config['server.labels']).toEqual(labels);
    });

    test('tikv 10.0.1.23 has its raftstore overrides too', () => {
      expect(find(t, 'tikv', '10.0.1.23').config).toMatchObject({
        'raftstore.raft-min-election-timeout-ticks': 1000,
        'raftstore.raft-max-election-timeout-ticks': 1020,
      });
    });

    test('tiflash learner_config lands in learnerConfig, config stays empty', () => {
      const f = find(t, 'tiflash', '10.0.1.25');
      expect(f.learnerConfig).toEqual({ 'server.labels': { zone: 'bj', dc: 'bjb', rack: 'rack1', host: 'tiflash-host2' } });
      expect(f.config).toEqual({});
    });
  });

  describe('topology.example.yaml explicit dirs and ports', () => {
    const t = loadTopology(fixture('topology.example.yaml'));

    test('two tikv on one host keep their own ports and dirs', () => {
      expect(find(t, 'tikv', '10.0.1.16', 20161)).toMatchObject({
        id: 'tikv-20161',
        ports: { port: 20161, status_port: 20181 },
        deployDir: '/data2/tidb-deploy/tikv-20161',
        dataDir: '/data2/tidb-data/tikv-20161',
        logDir: '/data2/tidb-deploy/tikv-20161/log',
        unit: 'tikv-20161.service',
      });
    });

    test('second tiflash on a host', () => {
      expect(find(t, 'tiflash', '10.0.1.19', 9001)).toMatchObject({
        ports: { tcp_port: 9001, flash_service_port: 3931, flash_proxy_port: 20171, flash_proxy_status_port: 20293, metrics_port: 8235 },
        deployDir: '/data2/tidb-deploy/tiflash-9001',
        dataDir: '/data2/tidb-data/tiflash-9001',
        unit: 'tiflash-9001.service',
      });
    });

    test('kvcdc entries are parsed as unmanaged instances with a warning', () => {
      const kv = t.otherInstances ?? [];
      expect(kv.map((i) => [i.role, i.host, i.port, i.deployDir, i.dataDir])).toEqual([
        ['tikv-cdc', '10.0.1.20', 8600, '/tidb-deploy/tikv-cdc-8600', '/data1/tidb-data/tikv-cdc-8600'],
        ['tikv-cdc', '10.0.1.21', 8600, '/tidb-deploy/tikv-cdc-8600', '/data1/tidb-data/tikv-cdc-8600'],
      ]);
      expect(t.warnings).toEqual([
        expect.objectContaining({ line: 294, column: 1, severity: 'warning', message: expect.stringContaining('kvcdc_servers: tiseal does not manage tikv-cdc') }),
      ]);
    });
  });
});
