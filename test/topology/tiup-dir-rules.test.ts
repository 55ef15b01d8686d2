/**
 * tiseal's directory resolution against TiUP's, case by case. Every expected path below is the one
 * TiUP's own test asserts after ParseTopologyYaml + ExpandRelativeDir (pingcap/tiup
 * pkg/cluster/spec/parse_topology_test.go, TestRelativePath, at commit 842f05cc), or follows from
 * the rules it tests: spec.go setCustomDefaults (per-instance dirs from global ones; an absolute
 * global data/log dir gets <role>-<port>, a relative one is kept relative), spec.go
 * Specification.UnmarshalYAML (monitored defaults), parse_topology.go ExpandRelativeDir (deploy dir
 * via util.go Abs: /home/<user>/<dir>; each comma-separated data dir entry and the log dir under
 * the absolute deploy dir). TiUP's topologies have no PD; tiseal requires one, so each case adds a
 * PD on another host.
 */
import { parseTopology, type Instance } from '../../src/topology';

const PD = 'pd_servers:\n  - host: 172.16.5.1\n';

function parse(yaml: string) {
  return parseTopology(`${yaml}\n${PD}`, 'tiup-case.yaml');
}
function dirs(i: Instance) {
  return { deploy: i.deployDir, data: (i.dataDirs ?? []).join(','), log: i.logDir };
}
const role = (t: ReturnType<typeof parse>, r: string) => t.instances.filter((i) => i.role === r).map(dirs);
const monitor = (t: ReturnType<typeof parse>) => ({ deploy: t.monitored.deploy_dir, data: t.monitored.data_dir, log: t.monitored.log_dir });

describe("TiUP's TestRelativePath cases", () => {
  test('relative instance deploy_dir lives under /home/<user> (parse_topology_test.go:60)', () => {
    const t = parse('tikv_servers:\n  - host: 172.16.5.140\n    deploy_dir: my-deploy');
    expect(role(t, 'tikv')[0].deploy).toBe('/home/tidb/my-deploy');
  });

  test('relative instance data_dir and log_dir live under its deploy dir (:73)', () => {
    const t = parse('tikv_servers:\n  - host: 172.16.5.140\n    deploy_dir: my-deploy\n    data_dir: my-data\n    log_dir: my-log');
    expect(role(t, 'tikv')).toEqual([{ deploy: '/home/tidb/my-deploy', data: '/home/tidb/my-deploy/my-data', log: '/home/tidb/my-deploy/my-log' }]);
  });

  test('relative global deploy_dir: <home>/<global>/<role>-<port>, data "data" under it (:90, :109)', () => {
    const t = parse(
      ['global:', '  deploy_dir: my-deploy', 'tikv_servers:', '  - host: 172.16.5.140', '    port: 20160', '    status_port: 20180', '  - host: 172.16.5.140', '    port: 20161', '    status_port: 20181'].join('\n'),
    );
    expect(role(t, 'tikv').map((d) => [d.deploy, d.data])).toEqual([
      ['/home/tidb/my-deploy/tikv-20160', '/home/tidb/my-deploy/tikv-20160/data'],
      ['/home/tidb/my-deploy/tikv-20161', '/home/tidb/my-deploy/tikv-20161/data'],
    ]);
  });

  test('case 3 (:136): per-instance dirs win; monitored dirs, log dir joined twice as TiUP does', () => {
    const t = parse(
      [
        'global:',
        '  deploy_dir: my-deploy',
        'tikv_servers:',
        '  - host: 172.16.5.140',
        '    port: 20160',
        '    status_port: 20180',
        '    data_dir: my-data',
        '    log_dir: my-log',
        '  - host: 172.16.5.140',
        '    port: 20161',
        '    status_port: 20181',
      ].join('\n'),
    );
    expect(monitor(t)).toEqual({
      deploy: '/home/tidb/my-deploy/monitor-9100',
      data: '/home/tidb/my-deploy/monitor-9100/data/monitor-9100',
      log: '/home/tidb/my-deploy/monitor-9100/my-deploy/monitor-9100/log',
    });
    expect(role(t, 'tikv')).toEqual([
      { deploy: '/home/tidb/my-deploy/tikv-20160', data: '/home/tidb/my-deploy/tikv-20160/my-data', log: '/home/tidb/my-deploy/tikv-20160/my-log' },
      { deploy: '/home/tidb/my-deploy/tikv-20161', data: '/home/tidb/my-deploy/tikv-20161/data', log: '/home/tidb/my-deploy/tikv-20161/log' },
    ]);
  });

  test('case 4 (:176): relative global data_dir and log_dir are kept relative, under each deploy dir', () => {
    const t = parse(
      [
        'global:',
        '  data_dir: my-global-data',
        '  log_dir: my-global-log',
        'tikv_servers:',
        '  - host: 172.16.5.140',
        '    port: 20160',
        '    status_port: 20180',
        '    data_dir: my-local-data',
        '    log_dir: my-local-log',
        '  - host: 172.16.5.140',
        '    port: 20161',
        '    status_port: 20181',
      ].join('\n'),
    );
    expect(monitor(t)).toEqual({
      deploy: '/home/tidb/deploy/monitor-9100',
      data: '/home/tidb/deploy/monitor-9100/my-global-data/monitor-9100',
      log: '/home/tidb/deploy/monitor-9100/deploy/monitor-9100/log',
    });
    expect(role(t, 'tikv')).toEqual([
      { deploy: '/home/tidb/deploy/tikv-20160', data: '/home/tidb/deploy/tikv-20160/my-local-data', log: '/home/tidb/deploy/tikv-20160/my-local-log' },
      { deploy: '/home/tidb/deploy/tikv-20161', data: '/home/tidb/deploy/tikv-20161/my-global-data', log: '/home/tidb/deploy/tikv-20161/my-global-log' },
    ]);
  });

  test('case 5 (:213): each comma-separated TiFlash data dir on its own, relative ones under the deploy dir', () => {
    const t = parse('tiflash_servers:\n  - host: 172.16.5.140\n    data_dir: /path/to/my-first-data,my-second-data');
    expect(role(t, 'tiflash')).toEqual([
      { deploy: '/home/tidb/deploy/tiflash-9000', data: '/path/to/my-first-data,/home/tidb/deploy/tiflash-9000/my-second-data', log: '/home/tidb/deploy/tiflash-9000/log' },
    ]);
  });

  test('issue #16 §7: /path/to/a,b is /path/to/a,/home/tidb/deploy/tiflash-9000/b (not /home/tidb/b)', () => {
    const t = parse('tiflash_servers:\n  - host: 172.16.5.140\n    data_dir: /path/to/a,b');
    expect(t.instances.find((i) => i.role === 'tiflash')!.dataDirs).toEqual(['/path/to/a', '/home/tidb/deploy/tiflash-9000/b']);
  });

  test('case 6 (:229): another user; relative instance deploy_dir under its home, global relative dirs under it', () => {
    const t = parse(
      [
        'global:',
        '  user: test',
        '  data_dir: my-global-data',
        '  log_dir: my-global-log',
        'tikv_servers:',
        '  - host: 172.16.5.140',
        '    port: 20160',
        '    status_port: 20180',
        '    deploy_dir: my-local-deploy',
        '    data_dir: my-local-data',
        '    log_dir: my-local-log',
        '  - host: 172.16.5.140',
        '    port: 20161',
        '    status_port: 20181',
      ].join('\n'),
    );
    expect(role(t, 'tikv')).toEqual([
      { deploy: '/home/test/my-local-deploy', data: '/home/test/my-local-deploy/my-local-data', log: '/home/test/my-local-deploy/my-local-log' },
      { deploy: '/home/test/deploy/tikv-20161', data: '/home/test/deploy/tikv-20161/my-global-data', log: '/home/test/deploy/tikv-20161/my-global-log' },
    ]);
  });
});

describe('rules TiUP applies in setCustomDefaults (spec.go) and UnmarshalYAML', () => {
  test('absolute global dirs get <role>-<port>; monitored dirs too, its log dir under its deploy dir', () => {
    const t = parse('global:\n  deploy_dir: /d\n  data_dir: /e\n  log_dir: /l\ntikv_servers:\n  - host: 172.16.5.140');
    expect(role(t, 'tikv')).toEqual([{ deploy: '/d/tikv-20160', data: '/e/tikv-20160', log: '/l/tikv-20160' }]);
    expect(monitor(t)).toEqual({ deploy: '/d/monitor-9100', data: '/e/monitor-9100', log: '/d/monitor-9100/log' });
  });

  test('absolute instance dirs are kept; a relative one under the absolute instance deploy dir', () => {
    const t = parse('global:\n  data_dir: /e\ntikv_servers:\n  - host: 172.16.5.140\n    deploy_dir: /x/kv\n    data_dir: kvdata\n    log_dir: /var/log/kv');
    expect(role(t, 'tikv')).toEqual([{ deploy: '/x/kv', data: '/x/kv/kvdata', log: '/var/log/kv' }]);
  });

  test('explicit monitored dirs: relative data and log dirs under an absolute monitored deploy dir', () => {
    const t = parse('monitored:\n  deploy_dir: /mon\n  data_dir: mdata\n  log_dir: mlog\ntikv_servers:\n  - host: 172.16.5.140');
    expect(monitor(t)).toEqual({ deploy: '/mon', data: '/mon/mdata', log: '/mon/mlog' });
  });
});
