/**
 * instancesToTiupYaml writes what `tiup cluster scale-out` takes back (scale-pd.yaml): the same
 * instances must come out of it whatever global section TiUP merges it with.
 */
import * as path from 'path';
import * as yaml from 'js-yaml';
import { TisealError } from '../../src/errors';
import { instancesToTiupYaml, loadTopology, parseTopology, pdInstances, type Instance } from '../../src/topology';

const minimal = loadTopology(path.join(__dirname, '..', 'fixtures', 'tiup-examples', 'minimal.yaml'));

function essentials(i: Instance) {
  return { role: i.role, host: i.host, sshPort: i.sshPort, name: i.name, ports: i.ports, deployDir: i.deployDir, dataDirs: i.dataDirs, logDir: i.logDir, unit: i.unit, config: i.config };
}

describe('instancesToTiupYaml', () => {
  test('scale-pd.yaml for the PDs removed during a TLS switch', () => {
    const removed = pdInstances(minimal).slice(1);
    expect(instancesToTiupYaml(removed)).toBe(
      [
        'pd_servers:',
        '  - host: 10.0.1.12',
        '    ssh_port: 22',
        '    name: pd-10.0.1.12-2379',
        '    client_port: 2379',
        '    peer_port: 2380',
        '    deploy_dir: /tidb-deploy/pd-2379',
        '    data_dir: /tidb-data/pd-2379',
        '    log_dir: /tidb-deploy/pd-2379/log',
        '  - host: 10.0.1.13',
        '    ssh_port: 22',
        '    name: pd-10.0.1.13-2379',
        '    client_port: 2379',
        '    peer_port: 2380',
        '    deploy_dir: /tidb-deploy/pd-2379',
        '    data_dir: /tidb-data/pd-2379',
        '    log_dir: /tidb-deploy/pd-2379/log',
        '',
      ].join('\n'),
    );
  });

  test('re-parsed under a different global section, the instances are the same', () => {
    const t = parseTopology(
      [
        'global:',
        '  user: tidb',
        '  ssh_port: 22',
        '  deploy_dir: /tidb-deploy',
        '  data_dir: /tidb-data',
        'pd_servers:',
        '  - host: 10.0.0.1',
        '    client_port: 12379',
        '    peer_port: 12380',
        '    numa_node: "0,1"',
        '    advertise_client_addr: http://pd1.example:12379',
        '    config:',
        '      schedule.max-merge-region-size: 20',
        '  - host: 10.0.0.2',
        '    ssh_port: 2222',
        '    data_dir: pd-data',
        'tiflash_servers:',
        '  - host: 10.0.0.3',
        '    data_dir: "data1,/data/tiflash-data"',
        '    learner_config:',
        '      log.level: info',
      ].join('\n'),
      'orig.yaml',
    );
    const text = instancesToTiupYaml(t.instances);
    const again = parseTopology(`global:\n  user: other\n  ssh_port: 2200\n  deploy_dir: elsewhere\n  data_dir: /other-data\n${text}`, 'scale.yaml');
    expect(again.instances.map(essentials)).toEqual(t.instances.map(essentials));
    expect(again.instances[0].advertise).toEqual({ advertise_client_addr: 'http://pd1.example:12379' });
    expect(again.instances[0].numaNode).toBe('0,1');
    expect(again.instances[2].learnerConfig).toEqual({ 'log.level': 'info' });
    expect(again.warnings).toEqual([]);
  });

  test('groups by role list in TiUP start order; output is deterministic', () => {
    const mixed = [minimal.instances.find((i) => i.role === 'tikv')!, minimal.instances.find((i) => i.role === 'pd')!];
    const text = instancesToTiupYaml(mixed);
    expect(Object.keys(yaml.load(text) as object)).toEqual(['pd_servers', 'tikv_servers']);
    expect(instancesToTiupYaml(mixed)).toBe(text);
  });

  test('a role key puts instances under that list and refuses other roles', () => {
    const pds = pdInstances(minimal);
    expect(Object.keys(yaml.load(instancesToTiupYaml(pds, 'pd_servers')) as object)).toEqual(['pd_servers']);
    const tikv = minimal.instances.filter((i) => i.role === 'tikv');
    expect(() => instancesToTiupYaml(tikv, 'pd_servers')).toThrow(TisealError);
    expect(() => instancesToTiupYaml(tikv, 'pd_servers')).toThrow('cannot write tikv instance 10.0.1.17:20160 under pd_servers');
  });

  test('roles without log_dir or data_dir fields do not get them (TiUP would reject them)', () => {
    const doc = yaml.load(instancesToTiupYaml(minimal.instances.filter((i) => i.role === 'grafana'))) as Record<string, Array<Record<string, unknown>>>;
    expect(doc.grafana_servers[0]).toEqual({ host: '10.0.1.22', ssh_port: 22, port: 3000, deploy_dir: '/tidb-deploy/grafana-3000' });
  });
});
