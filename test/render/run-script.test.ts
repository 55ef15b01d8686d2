import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { renderRunScript } from '../../src/render';
import type { Instance, Topology } from '../../src/topology/types';
import { EXAMPLES, LAB_DEFAULT, TIUP_FULL, example, flagValue, one, rendered, tmpDir, topo } from './helpers';

const pdHostPorts = (t: Topology): string => t.instances.filter((i) => i.role === 'pd').map((p) => `${p.host}:${p.ports.client_port}`).join(',');
const pdUrls = (t: Topology, scheme: string): string => t.instances.filter((i) => i.role === 'pd').map((p) => `${scheme}://${p.host}:${p.ports.client_port}`).join(',');

describe.each([...EXAMPLES, LAB_DEFAULT, TIUP_FULL])('run scripts for %s', (file) => {
  const t = example(file);
  const insts = rendered(t);

  test.each(insts.map((i) => [`${i.role} ${i.host}:${i.port}`, i] as [string, Instance]))('%s: valid bash, TiUP flags (plaintext and TLS)', (_n, inst) => {
    for (const tls of [false, true]) {
      const s = renderRunScript(inst, t, { tls });
      execFileSync('bash', ['-n'], { input: s }); // syntax check by bash itself
      expect(s.startsWith('#!/bin/bash\nset -e\n')).toBe(true);
      expect(s).toContain(`cd "`);
      expect(s).not.toMatch(/{{|}}/);
      const scheme = tls ? 'https' : 'http';
      switch (inst.role) {
        case 'pd': {
          expect(s).toContain('bin/pd-server \\');
          expect(flagValue(s, '--name')).toBe(inst.name);
          expect(flagValue(s, '--client-urls')).toBe(`${scheme}://0.0.0.0:${inst.ports.client_port}`);
          expect(flagValue(s, '--advertise-client-urls')).toBe(`${scheme}://${inst.host}:${inst.ports.client_port}`);
          expect(flagValue(s, '--peer-urls')).toBe(`${scheme}://0.0.0.0:${inst.ports.peer_port}`);
          expect(flagValue(s, '--advertise-peer-urls')).toBe(`${scheme}://${inst.host}:${inst.ports.peer_port}`);
          expect(flagValue(s, '--data-dir')).toBe(inst.dataDir);
          const members = t.instances.filter((i) => i.role === 'pd').map((p) => `${p.name}=${scheme}://${p.host}:${p.ports.peer_port}`);
          expect(flagValue(s, '--initial-cluster')).toBe(members.join(','));
          expect(flagValue(s, '--join')).toBeUndefined();
          expect(s).toContain('--config=conf/pd.toml');
          expect(flagValue(s, '--log-file')).toBe(`${inst.logDir}/pd.log`);
          expect(s).toContain(`2>> "${inst.logDir}/pd_stderr.log"`);
          break;
        }
        case 'tikv':
          expect(s).toContain('exec bin/tikv-server \\');
          expect(flagValue(s, '--addr')).toBe(`0.0.0.0:${inst.ports.port}`);
          expect(flagValue(s, '--advertise-addr')).toBe(`${inst.host}:${inst.ports.port}`);
          expect(flagValue(s, '--status-addr')).toBe(`0.0.0.0:${inst.ports.status_port}`);
          expect(flagValue(s, '--advertise-status-addr')).toBe(`${inst.host}:${inst.ports.status_port}`);
          expect(flagValue(s, '--pd')).toBe(pdHostPorts(t)); // no scheme, TLS or not
          expect(flagValue(s, '--data-dir')).toBe(inst.dataDir);
          expect(s).toContain('--config conf/tikv.toml');
          break;
        case 'tidb':
          expect(s).toContain('bin/tidb-server \\');
          expect(flagValue(s, '-P')).toBe(String(inst.ports.port));
          expect(flagValue(s, '--status')).toBe(String(inst.ports.status_port));
          expect(flagValue(s, '--host')).toBe('0.0.0.0');
          expect(flagValue(s, '--advertise-address')).toBe(inst.host);
          expect(flagValue(s, '--store')).toBe('tikv');
          expect(flagValue(s, '--path')).toBe(pdHostPorts(t)); // no scheme, TLS or not
          expect(s).toContain('--config=conf/tidb.toml');
          break;
        case 'tiflash':
          expect(s).toContain('exec bin/tiflash/tiflash server \\');
          expect(s).toContain('--config-file conf/tiflash.toml');
          expect(s).toContain(`export LD_LIBRARY_PATH=${inst.deployDir}/bin/tiflash:$LD_LIBRARY_PATH`);
          break;
        case 'cdc':
          expect(s).toContain('exec bin/cdc server \\');
          expect(flagValue(s, '--addr')).toBe(`0.0.0.0:${inst.ports.port}`);
          expect(flagValue(s, '--advertise-addr')).toBe(`${inst.host}:${inst.ports.port}`);
          expect(flagValue(s, '--pd')).toBe(pdUrls(t, scheme));
          expect(flagValue(s, '--ca')).toBe(tls ? 'tls/ca.crt' : undefined);
          expect(flagValue(s, '--cert')).toBe(tls ? 'tls/cdc.crt' : undefined);
          expect(flagValue(s, '--key')).toBe(tls ? 'tls/cdc.pem' : undefined);
          expect(s).toContain('--config conf/cdc.toml');
          break;
        case 'pump':
        case 'drainer':
          // --pd-urls switches scheme with TLS (clientv3 speaks TLS only to https://); no TLS flags.
          expect(s).toContain(`exec bin/${inst.role} \\`);
          expect(flagValue(s, '--node-id')).toBe(`${inst.host}:${inst.ports.port}`);
          expect(flagValue(s, '--addr')).toBe(inst.role === 'pump' ? `0.0.0.0:${inst.ports.port}` : `${inst.host}:${inst.ports.port}`);
          expect(flagValue(s, '--advertise-addr')).toBe(inst.role === 'pump' ? `${inst.host}:${inst.ports.port}` : undefined);
          expect(flagValue(s, '--pd-urls')).toBe(pdUrls(t, scheme));
          expect(flagValue(s, '--data-dir')).toBe(inst.dataDir);
          expect(flagValue(s, '--log-file')).toBe(`${inst.logDir}/${inst.role}.log`);
          expect(s).toContain(`--config=conf/${inst.role}.toml 2>> "${inst.logDir}/${inst.role}_stderr.log"`);
          expect(s).not.toMatch(/tls\//);
          break;
        default:
          throw new Error(`unexpected role ${inst.role}`);
      }
    }
  });
});

describe('PD join mode (scale-out script)', () => {
  const t = example(LAB_DEFAULT);
  const pd = one(t, 'pd', '10.77.0.13');

  test('defaults to the advertise client URLs of the other PDs, no --initial-cluster', () => {
    const s = renderRunScript(pd, t, { tls: true, pdMode: 'join' });
    expect(flagValue(s, '--join')).toBe('https://10.77.0.11:2379,https://10.77.0.12:2379');
    expect(flagValue(s, '--initial-cluster')).toBeUndefined();
    expect(flagValue(s, '--client-urls')).toBe('https://0.0.0.0:2379');
  });

  test('explicit join URLs are used verbatim', () => {
    const s = renderRunScript(pd, t, { tls: false, pdMode: 'join', joinUrls: ['http://10.77.0.11:2379'] });
    expect(flagValue(s, '--join')).toBe('http://10.77.0.11:2379');
  });

  test('a lone PD cannot join', () => {
    const solo = topo('pd_servers:\n  - host: 10.1.1.1\n');
    expect(() => renderRunScript(solo.instances[0], solo, { tls: false, pdMode: 'join' })).toThrow(/at least one other PD/);
  });
});

describe('exact text', () => {
  test('run_pd.sh matches what TiUP writes for the lab PD on 10.77.0.11', () => {
    const t = example(LAB_DEFAULT);
    expect(renderRunScript(one(t, 'pd', '10.77.0.11'), t, { tls: false })).toBe(
      [
        '#!/bin/bash',
        'set -e',
        '',
        '# WARNING: This file was auto-generated. Do not edit!',
        '#          All your edit might be overwritten!',
        'DEPLOY_DIR=/tidb-deploy/pd-2379',
        '',
        'cd "${DEPLOY_DIR}" || exit 1',
        '',
        'exec \\',
        '    env GODEBUG=madvdontneed=1 \\',
        '    bin/pd-server \\',
        '    --name="pd-10.77.0.11-2379" \\',
        '    --client-urls="http://0.0.0.0:2379" \\',
        '    --advertise-client-urls="http://10.77.0.11:2379" \\',
        '    --peer-urls="http://0.0.0.0:2380" \\',
        '    --advertise-peer-urls="http://10.77.0.11:2380" \\',
        '    --data-dir="/tidb-data/pd-2379" \\',
        '    --initial-cluster="pd-10.77.0.11-2379=http://10.77.0.11:2380,pd-10.77.0.12-2379=http://10.77.0.12:2380,pd-10.77.0.13-2379=http://10.77.0.13:2380" \\',
        '    --config=conf/pd.toml \\',
        '    --log-file="/tidb-deploy/pd-2379/log/pd.log" 2>> "/tidb-deploy/pd-2379/log/pd_stderr.log"',
        '',
      ].join('\n'),
    );
  });

  test('numa_node adds numactl', () => {
    const t = topo('pd_servers:\n  - host: 10.1.1.1\n    numa_node: "0,1"\n');
    expect(renderRunScript(t.instances[0], t, { tls: false })).toContain('exec \\\n    numactl --cpunodebind=0,1 --membind=0,1 \\\n    env GODEBUG');
  });

  test('advertise and listen_host overrides', () => {
    const t = topo(
      [
        'global:',
        '  listen_host: 10.1.1.1',
        'pd_servers:',
        '  - host: 10.1.1.1',
        '    advertise_client_addr: "http://pd.example:2379"',
        'tikv_servers:',
        '  - host: 10.1.1.2',
        '    listen_host: 10.1.1.2',
        '    advertise_addr: "kv.example:20160"',
      ].join('\n'),
    );
    const pd = renderRunScript(one(t, 'pd'), t, { tls: false });
    expect(flagValue(pd, '--client-urls')).toBe('http://10.1.1.1:2379');
    expect(flagValue(pd, '--advertise-client-urls')).toBe('http://pd.example:2379');
    const kv = renderRunScript(one(t, 'tikv'), t, { tls: false });
    expect(flagValue(kv, '--addr')).toBe('10.1.1.2:20160');
    expect(flagValue(kv, '--advertise-addr')).toBe('kv.example:20160');
  });
});

describe('the scripts really pass their flags (executed by bash against a recording binary)', () => {
  // A deploy dir with a space and shell metacharacters proves the quoting. The topology model
  // refuses such a path, so it is put into the parsed instances afterwards.
  const base = tmpDir('tiseal-render-');
  const safe = path.join(base, 'deploy');
  const deploy = path.join(base, 'dep loy $HOME `x`');
  const t = topo(
    [
      'global:',
      `  deploy_dir: ${JSON.stringify(safe)}`,
      `  data_dir: ${JSON.stringify(path.join(base, 'data'))}`,
      'pd_servers:',
      '  - host: 10.1.1.1',
      '  - host: 10.1.1.2',
      'tikv_servers:',
      '  - host: 10.1.1.3',
      'tidb_servers:',
      '  - host: 10.1.1.4',
      'tiflash_servers:',
      '  - host: 10.1.1.5',
      'cdc_servers:',
      '  - host: 10.1.1.4',
      'pump_servers:',
      '  - host: 10.1.1.6',
      'drainer_servers:',
      '  - host: 10.1.1.7',
    ].join('\n'),
  );
  for (const i of t.instances) {
    i.deployDir = i.deployDir.replace(safe, deploy);
    i.logDir = i.logDir.replace(safe, deploy);
  }
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));
  const bins: Record<string, string> = { pd: 'bin/pd-server', tikv: 'bin/tikv-server', tidb: 'bin/tidb-server', tiflash: 'bin/tiflash/tiflash', cdc: 'bin/cdc', pump: 'bin/pump', drainer: 'bin/drainer' };

  test.each(['pd', 'tikv', 'tidb', 'tiflash', 'cdc', 'pump', 'drainer'])('%s', (role) => {
    const inst = one(t, role);
    const bin = path.join(inst.deployDir, bins[role]);
    fs.mkdirSync(path.dirname(bin), { recursive: true });
    fs.mkdirSync(inst.logDir, { recursive: true });
    fs.writeFileSync(bin, '#!/bin/sh\nprintf "%s\\n" "$PWD" "$@" > "$0.args"\n', { mode: 0o755 });
    const script = path.join(base, `run_${role}.sh`);
    fs.writeFileSync(script, renderRunScript(inst, t, { tls: true }), { mode: 0o755 });
    const r = spawnSync('bash', [script], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const [cwd, ...argv] = fs.readFileSync(`${bin}.args`, 'utf8').trimEnd().split('\n');
    expect(cwd).toBe(inst.deployDir);
    if (role === 'pd') {
      expect(argv).toContain(`--data-dir=${inst.dataDir}`);
      expect(argv).toContain(`--log-file=${inst.logDir}/pd.log`);
      expect(argv).toContain('--initial-cluster=pd-10.1.1.1-2379=https://10.1.1.1:2380,pd-10.1.1.2-2379=https://10.1.1.2:2380');
    } else if (role === 'tikv') {
      expect(argv).toEqual(expect.arrayContaining(['--pd', '10.1.1.1:2379,10.1.1.2:2379', '--data-dir', inst.dataDir!, '--log-file', `${inst.logDir}/tikv.log`]));
    } else if (role === 'tidb') {
      expect(argv).toEqual(expect.arrayContaining(['-P', '4000', '--path=10.1.1.1:2379,10.1.1.2:2379', '--store=tikv']));
    } else if (role === 'pump' || role === 'drainer') {
      expect(argv).toEqual(expect.arrayContaining(['--pd-urls=https://10.1.1.1:2379,https://10.1.1.2:2379', `--data-dir=${inst.dataDir}`, `--config=conf/${role}.toml`]));
    } else if (role === 'tiflash') {
      expect(argv).toEqual(['server', '--config-file', 'conf/tiflash.toml']);
    } else {
      expect(argv).toEqual(expect.arrayContaining(['server', '--pd', 'https://10.1.1.1:2379,https://10.1.1.2:2379', '--ca', 'tls/ca.crt', '--cert', 'tls/cdc.crt', '--key', 'tls/cdc.pem']));
    }
  });
});

test('roles without a template are refused', () => {
  const t = example(EXAMPLES[0]);
  const prom = t.instances.find((i) => i.role === 'prometheus')!;
  expect(() => renderRunScript(prom, t, { tls: false })).toThrow(/no run script template for role prometheus/);
});
