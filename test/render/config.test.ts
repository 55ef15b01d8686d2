import * as TOML from '@iarna/toml';
import * as path from 'path';
import { compareVersions, renderConfig } from '../../src/render';
import type { Instance } from '../../src/topology/types';
import { EXAMPLES, LAB_DEFAULT, TIUP_FULL, example, one, rendered, topo } from './helpers';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Parse with an independent TOML parser (what the emulators use). */
function parse(text: string): Json {
  return JSON.parse(JSON.stringify(TOML.parse(text))) as Json;
}

const HEADER = '# WARNING: This file is auto-generated. Do not edit! All your modification will be overwritten!';

describe.each([...EXAMPLES, LAB_DEFAULT, TIUP_FULL])('config files for %s', (file) => {
  const t = example(file);
  test.each(rendered(t).map((i) => [`${i.role} ${i.host}:${i.port}`, i] as [string, Instance]))('%s', (_n, inst) => {
    const files = renderConfig(inst, t);
    const expected = inst.role === 'tiflash' ? ['tiflash.toml', 'tiflash-learner.toml'] : [`${inst.role}.toml`];
    expect(Object.keys(files)).toEqual(expected.map((f) => `${inst.deployDir}/conf/${f}`));
    expect(Object.keys(files).every((f) => inst.configFiles.includes(f))).toBe(true);
    for (const [name, text] of Object.entries(files)) {
      expect(text.startsWith(HEADER)).toBe(true);
      expect(text).toContain(`#   ${path.basename(name, '.toml')}:`);
      parse(text); // valid TOML
    }
  });
});

describe('merging like TiUP', () => {
  test('multi-dc: dotted keys nest, arrays and arrays of tables survive, instance config wins', () => {
    const t = example(EXAMPLES[2]);
    const pd = parse(Object.values(renderConfig(one(t, 'pd'), t))[0]);
    expect(pd.replication).toEqual({ 'location-labels': ['zone', 'dc', 'rack', 'host'], 'max-replicas': 5 });
    expect(pd['label-property']['reject-leader']).toEqual([{ key: 'dc', value: 'sha' }]);
    const kv = parse(Object.values(renderConfig(one(t, 'tikv', '10.0.1.23'), t))[0]);
    expect(kv.server).toEqual({ 'grpc-compression-type': 'gzip', labels: { zone: 'sh', dc: 'sha', rack: 'rack1', host: 'host1' } });
    expect(kv.raftstore).toEqual({ 'raft-min-election-timeout-ticks': 1000, 'raft-max-election-timeout-ticks': 1020 });
    const flash = renderConfig(one(t, 'tiflash', '10.0.1.24'), t);
    const learner = parse(flash[`${one(t, 'tiflash', '10.0.1.24').deployDir}/conf/tiflash-learner.toml`]);
    expect(learner.server.labels).toEqual({ zone: 'bj', dc: 'bja', rack: 'rack1', host: 'tiflash-host1' });
    expect(learner.server['engine-addr']).toBe('10.0.1.24:3930');
  });

  test('instance config overrides server_configs key by key', () => {
    const t = topo(
      [
        'server_configs:',
        '  tikv:',
        '    storage.reserve-space: 0MB',
        '    log.level: info',
        '    readpool:',
        '      unified.max-thread-count: 2',
        'pd_servers:',
        '  - host: 10.1.1.9',
        'tikv_servers:',
        '  - host: 10.1.1.1',
        '    config:',
        '      log.level: warn',
        '      readpool.unified:',
        '        min-thread-count: 1',
      ].join('\n'),
    );
    const kv = parse(Object.values(renderConfig(one(t, 'tikv'), t))[0]);
    expect(kv).toEqual({ storage: { 'reserve-space': '0MB' }, log: { level: 'warn' }, readpool: { unified: { 'max-thread-count': 2, 'min-thread-count': 1 } } });
  });

  test('lab default: the documented server_configs land nested', () => {
    const t = example(LAB_DEFAULT);
    const pdToml = Object.values(renderConfig(one(t, 'pd'), t))[0];
    expect(parse(pdToml).schedule['max-store-down-time']).toBe('30s');
    expect(pdToml).toContain('[schedule]\nmax-store-down-time = "30s"');
    expect(parse(Object.values(renderConfig(one(t, 'cdc'), t))[0])['per-table-memory-quota']).toBe(20971520);
  });

  test('no server_configs: header only, still valid TOML', () => {
    const t = topo('tidb_servers:\n  - host: 10.1.1.1\npd_servers:\n  - host: 10.1.1.2\n');
    const text = Object.values(renderConfig(one(t, 'tidb'), t))[0];
    expect(parse(text)).toEqual({});
  });
});

describe('TiFlash essentials (TiUP defaults)', () => {
  const t = example(LAB_DEFAULT);
  const inst = one(t, 'tiflash');
  const files = renderConfig(inst, t);
  const main = parse(files['/tidb-deploy/tiflash-9000/conf/tiflash.toml']);
  const learner = parse(files['/tidb-deploy/tiflash-9000/conf/tiflash-learner.toml']);

  test('tiflash.toml', () => {
    expect(main.path).toBe('/tidb-data/tiflash-9000');
    expect(main.tmp_path).toBe('/tidb-data/tiflash-9000/tmp');
    expect(main.listen_host).toBe('0.0.0.0');
    expect(main.flash.service_addr).toBe('10.77.0.15:3930');
    expect(main.flash.tidb_status_addr).toBe('10.77.0.14:10080');
    expect(main.flash.proxy.config).toBe('/tidb-deploy/tiflash-9000/conf/tiflash-learner.toml');
    expect(main.raft.pd_addr).toBe('10.77.0.11:2379,10.77.0.12:2379,10.77.0.13:2379');
    expect(main.status.metrics_port).toBe(8234);
    expect(main.logger.log).toBe('/tidb-deploy/tiflash-9000/log/tiflash.log');
    // v8.5.1: TiFlash no longer listens on tcp/http ports, so TiUP leaves them out.
    expect(main.tcp_port).toBeUndefined();
    expect(main.http_port).toBeUndefined();
    expect(main.security).toBeUndefined();
  });

  test('tiflash-learner.toml', () => {
    expect(learner.server).toEqual({
      addr: '0.0.0.0:20170',
      'advertise-addr': '10.77.0.15:20170',
      'status-addr': '0.0.0.0:20292',
      'advertise-status-addr': '10.77.0.15:20292',
      'engine-addr': '10.77.0.15:3930',
    });
    expect(learner.storage['data-dir']).toBe('/tidb-data/tiflash-9000/flash');
    expect(learner['log-file']).toBe('/tidb-deploy/tiflash-9000/log/tiflash_tikv.log');
    expect(learner.security).toEqual({ 'ca-path': '', 'cert-path': '', 'key-path': '' });
  });

  test('old versions get tcp_port/http_port and runAsDaemon', () => {
    const old = parse(renderConfig(inst, t, { version: 'v5.0.0' })['/tidb-deploy/tiflash-9000/conf/tiflash.toml']);
    expect(old.tcp_port).toBe(9000);
    expect(old.http_port).toBe(8123);
    expect(old.application.runAsDaemon).toBe(true);
  });
});

test('compareVersions', () => {
  expect(compareVersions('v7.1.0', 'v7.1.0')).toBe(0);
  expect(compareVersions('v7.0.9', 'v7.1.0')).toBe(-1);
  expect(compareVersions('v8.5.1', 'v7.1.0')).toBe(1);
  expect(compareVersions('nightly', 'v9.0.0')).toBe(1);
  expect(compareVersions('v10.0.0', 'v9.9.9')).toBe(1);
});

test('roles without a config renderer are refused', () => {
  const t = example(EXAMPLES[0]);
  expect(() => renderConfig(t.instances.find((i) => i.role === 'grafana')!, t)).toThrow(/no config renderer for role grafana/);
});
