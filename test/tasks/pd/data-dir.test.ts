/**
 * A PD data dir is proven before root moves or creates it (issue #26 item 2): the topology's dir
 * equals the deployed run script's --data-dir (ports too), is no system path, and holds PD's data
 * or nothing, owned by the deploy user. Each case names both values.
 */
import { renderRunScript } from '../../../src/render';
import { pdDataDirProblems, scriptFlag, systemPathProblem } from '../../../src/tasks/pd/data-dir';
import { parseTopology, pdInstances } from '../../../src/topology';

const topo = (dataDir?: string) => parseTopology(['global:', '  user: tidb', '  deploy_dir: /tidb-deploy', '  data_dir: /tidb-data', 'pd_servers:', '  - host: 10.0.0.1', ...(dataDir ? [`    data_dir: ${dataDir}`] : []), 'tikv_servers:', '  - host: 10.0.0.1'].join('\n'), 't.yaml');
const [DEPLOYED] = pdInstances(topo());
const script = renderRunScript(DEPLOYED, topo(), { tls: false, pdMode: 'initial' });

describe('PD data dir proof', () => {
  it('reads TiUP run-script flags', () => {
    expect(scriptFlag(script, 'data-dir')).toBe('/tidb-data/pd-2379');
    expect(scriptFlag(script, 'client-urls')).toBe('http://0.0.0.0:2379');
  });

  it('system paths are refused, PD-like paths are not', () => {
    for (const d of ['/', '/etc', '/etc/systemd/system', '/usr/local/x', '/var', '/root/pd', 'data/pd']) expect(`${d}: ${systemPathProblem(d) ?? 'ok'}`).not.toMatch(/: ok$/);
    for (const d of ['/tidb-data/pd-2379', '/data1/pd', '/var/lib/tidb/pd', '/home/tidb/pd']) expect(systemPathProblem(d)).toBeUndefined();
  });

  it('the deployed PD on its own dir, holding member/: nothing to say', () => {
    expect(pdDataDirProblems(DEPLOYED, 'tidb', { script, dir: { isDir: true, owner: 'tidb', entries: ['member', 'hot-region'] } })).toEqual([]);
    expect(pdDataDirProblems(DEPLOYED, 'tidb', { script })).toEqual([]); // moved aside or not there yet
  });

  it('a topology data_dir that is not the deployed one (the /etc/systemd/system case) names both and the system path', () => {
    const [pd] = pdInstances(topo('/etc/systemd/system'));
    expect(pdDataDirProblems(pd, 'tidb', { script, dir: { isDir: true, owner: 'root', entries: ['ssh.service'] } })).toEqual([
      'data_dir /etc/systemd/system is inside the system directory /etc',
      `topology says data_dir /etc/systemd/system, the deployed ${pd.runScript} starts PD on /tidb-data/pd-2379`,
      '/etc/systemd/system is owned by root, not the deploy user tidb',
    ]);
  });

  it('a dir of the deploy user that holds no PD data, and ports that differ, are refused', () => {
    const [pd] = pdInstances(topo('/data/other'));
    const moved = script.replace(/\/tidb-data\/pd-2379/g, '/data/other').replace(/:2380/g, ':2390');
    expect(pdDataDirProblems(pd, 'tidb', { script: moved, dir: { isDir: true, owner: 'tidb', entries: ['photos', 'notes.txt'] } })).toEqual([
      'topology says peer_port 2380, the deployed run script listens on 2390',
      '/data/other holds no PD data (no member/), but photos, notes.txt',
    ]);
  });
});
