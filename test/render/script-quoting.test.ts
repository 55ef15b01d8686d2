/**
 * No value reaches a run script as code (issue #11 item 3): values the topology model would refuse
 * are forced into parsed instances, the scripts are run by bash against recording stand-ins for
 * numactl and the binaries, and each value must arrive as one literal argument with no side effect.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { renderRunScript } from '../../src/render';
import { one, tmpDir, topo } from './helpers';

const base = tmpDir('tiseal-quoting-');
const marker = path.join(base, 'pwned');
const recorder = '#!/bin/sh\nprintf "%s\\n" "$@" > "$0.args"\n';
afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

const shims = path.join(base, 'shims');
const argsOf = (file: string) => fs.readFileSync(`${file}.args`, 'utf8').trimEnd().split('\n');

function run(script: string, deployDir: string, bin: string): void {
  fs.rmSync(shims, { recursive: true, force: true });
  fs.mkdirSync(shims, { recursive: true });
  fs.writeFileSync(path.join(shims, 'numactl'), recorder, { mode: 0o755 });
  fs.mkdirSync(path.dirname(path.join(deployDir, bin)), { recursive: true });
  fs.writeFileSync(path.join(deployDir, bin), recorder, { mode: 0o755 });
  const file = path.join(base, 'run.sh');
  fs.writeFileSync(file, script, { mode: 0o755 });
  const r = spawnSync('bash', [file], { encoding: 'utf8', env: { ...process.env, PATH: `${shims}:${process.env.PATH}` } });
  expect(r.status).toBe(0);
  expect(fs.existsSync(marker)).toBe(false);
}

const evil = `0;touch ${marker};`;

test.each([
  ['pd', 'bin/pd-server'],
  ['tikv', 'bin/tikv-server'],
  ['tidb', 'bin/tidb-server'],
  ['tiflash', 'bin/tiflash/tiflash'],
  ['cdc', 'bin/cdc'],
])('%s: a hostile numa_node/numa_cores is one literal numactl argument', (role, bin) => {
  const deploy = path.join(base, role);
  const t = topo(`global:\n  deploy_dir: ${deploy}\n  data_dir: ${path.join(base, 'data')}\npd_servers:\n  - host: 10.1.1.1\n${role === 'pd' ? '' : `${role}_servers:\n  - host: 10.1.1.2\n`}`);
  const inst = one(t, role);
  fs.mkdirSync(inst.logDir, { recursive: true });
  inst.numaNode = evil;
  inst.raw = { ...inst.raw, numa_cores: `1;touch ${marker}` };
  run(renderRunScript(inst, t, { tls: false }), inst.deployDir, bin);
  const args = argsOf(path.join(shims, 'numactl'));
  expect(args).toContain(`--cpunodebind=${evil}`);
  expect(args).toContain(`--membind=${evil}`);
  if (role === 'tidb' || role === 'tiflash') expect(args).toEqual(expect.arrayContaining(['-C', `1;touch ${marker}`]));
});

test('cdc: a hostile ticdc_cluster_id is one literal --cluster-id argument', () => {
  const deploy = path.join(base, 'cdc-id');
  const t = topo(`global:\n  deploy_dir: ${deploy}\n  data_dir: ${path.join(base, 'data')}\npd_servers:\n  - host: 10.1.1.1\ncdc_servers:\n  - host: 10.1.1.2\n    ticdc_cluster_id: ok\n`);
  const inst = one(t, 'cdc');
  fs.mkdirSync(inst.logDir, { recursive: true });
  inst.raw = { ...inst.raw, ticdc_cluster_id: `x $(touch ${marker}) ; touch ${marker}` };
  run(renderRunScript(inst, t, { tls: false }), inst.deployDir, 'bin/cdc');
  const argv = argsOf(path.join(inst.deployDir, 'bin/cdc'));
  expect(argv[argv.indexOf('--cluster-id') + 1]).toBe(`x $(touch ${marker}) ; touch ${marker}`);
});

test('valid values render exactly as TiUP writes them (bare)', () => {
  const t = topo('pd_servers:\n  - host: 10.1.1.1\ncdc_servers:\n  - host: 10.1.1.2\n    numa_node: "0,1"\n    ticdc_cluster_id: cluster-1\n');
  const s = renderRunScript(one(t, 'cdc'), t, { tls: false });
  expect(s).toContain('exec numactl --cpunodebind=0,1 --membind=0,1 bin/cdc server \\');
  expect(s).toContain('    --cluster-id cluster-1 \\');
});
