import * as fs from 'fs';
import * as path from 'path';
import { reloadPlan, scaleOutFiles } from '../../lab/tiup/day2';
import { parseMeta } from '../../lab/tiup/spec';

const meta = (n: string): string => fs.readFileSync(path.join(__dirname, 'fixtures', `${n}.meta.yaml`), 'utf8');

test('reload rewrites every instance config and restarts in ComponentsByUpdateOrder', () => {
  const plan = reloadPlan(parseMeta(meta('tls-float'), 'c'));
  expect(plan.restart.map((s) => s.role)).toEqual(['tiflash', 'cdc', 'pd', 'tikv', 'pump', 'tidb', 'drainer', 'prometheus']);
  expect(plan.restart.find((s) => s.role === 'tikv')!.units).toEqual([{ host: '10.0.2.1', unit: 'tikv-20160.service' }]);
  const confs = plan.files.filter((f) => f.path.includes('/conf/')).map((f) => `${f.host}:${f.path}`);
  expect(confs).toContain('10.0.2.1:/tidb-deploy/tikv-20160/conf/tikv.toml');
  expect(confs).toContain('10.0.2.2:/tidb-deploy/tiflash-9000/conf/tiflash-learner.toml');
  expect(confs).toContain('10.0.2.1:/tidb-deploy/monitor-9100/conf/blackbox.yml');
});

test('scale-out of one TiKV: its files, agents on a new host, the TLS certificate TiUP issues', () => {
  const text = meta('tls-float').replace('  tidb_servers:', '    - host: 10.0.2.9\n      port: 20161\n  tidb_servers:');
  const merged = parseMeta(text, 'c');
  const before = parseMeta(meta('tls-float'), 'c');
  const kv = merged.instances.find((i) => i.host === '10.0.2.9')!;
  const out = scaleOutFiles(before, kv);
  expect(out.files.map((f) => f.path)).toEqual([
    '/etc/systemd/system/tikv-20161.service',
    '/tidb-deploy/tikv-20161/scripts/run_tikv.sh',
    '/tidb-deploy/tikv-20161/conf/tikv.toml',
  ]);
  expect(out.files[2].content).toContain('ca-path = "/tidb-deploy/tikv-20161/tls/ca.crt"');
  expect(out.agents.map((f) => f.host)).toEqual(Array(5).fill('10.0.2.9'));
  expect(out.certificate).toEqual({ host: '10.0.2.9', dir: '/tidb-deploy/tikv-20161/tls', files: ['ca.crt', 'tikv.crt', 'tikv.pem'], commonName: 'tikv', dns: ['localhost'], ips: ['127.0.0.1', '10.0.2.9'] });
  // The existing instances are regenerated against the merged topology: Prometheus now scrapes the new TiKV.
  expect(out.refreshed.find((f) => f.path.endsWith('prometheus.yml'))!.content).toContain("'10.0.2.9:20180'");
  expect(() => scaleOutFiles(before, before.instances[0])).toThrow(/one TiKV/);
});
