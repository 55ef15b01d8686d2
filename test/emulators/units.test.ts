import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { FlagError, parseFlags } from '../../lab/emulators/common/flags';
import { parseJsonLossless, toJson } from '../../lab/emulators/common/json';
import { formatGoDuration, parseGoDuration, unknownKeys } from '../../lab/emulators/common/toml';
import { parseVersion, versionAtLeast } from '../../lab/emulators/common/version';
import { EMULATOR_BINARIES, emulatorWrapper } from '../../lab/emulators/wrapper';
import { buildEmulators, ROOT, tmpDir } from './helpers';

test('lossless JSON keeps uint64 above 2^53 and writes them back raw', () => {
  const text = '{"header":{"cluster_id":7711074326387157539},"members":[{"member_id":18446744073709551615,"n":1.5,"s":"a\\"b"}]}';
  const j = parseJsonLossless(text) as { header: { cluster_id: bigint }; members: { member_id: bigint; n: number; s: string }[] };
  expect(j.header.cluster_id).toBe(7711074326387157539n);
  expect(j.members[0].member_id).toBe(18446744073709551615n);
  expect(j.members[0].n).toBe(1.5);
  expect(j.members[0].s).toBe('a"b');
  expect(toJson(j)).toBe(text);
  // What the lossless parser protects against: JSON.parse rounds the id.
  expect(BigInt(JSON.parse(text).header.cluster_id)).not.toBe(7711074326387157539n);
  expect(() => parseJsonLossless('{"a":1,}')).toThrow(SyntaxError);
});

test('flag dialects: pflag, Go flag, clap', () => {
  const specs = [{ name: 'name' }, { name: 'config', short: 'C' }, { name: 'version', short: 'V', bool: true }];
  const p = parseFlags(['--name=a', '--config', 'x.toml', '-V'], specs, 'pflag', 'pd-server');
  expect([p.values.get('name'), p.values.get('config'), p.values.get('version')]).toEqual(['a', 'x.toml', true]);
  expect(parseFlags(['-Cconf/tikv.toml'], specs, 'clap', 'tikv-server').values.get('config')).toBe('conf/tikv.toml');
  expect(parseFlags(['-name', 'b'], specs, 'goflag', 'tidb-server').values.get('name')).toBe('b');
  const err = (fn: () => unknown): FlagError => {
    try {
      fn();
    } catch (e) {
      return e as FlagError;
    }
    throw new Error('no error');
  };
  expect(err(() => parseFlags(['--bogus'], specs, 'pflag', 'pd-server'))).toMatchObject({ exitCode: 1, message: 'Error: unknown flag: --bogus' });
  expect(err(() => parseFlags(['--bogus=1'], specs, 'goflag', 'tidb-server')).exitCode).toBe(2);
  expect(err(() => parseFlags(['--name'], specs, 'pflag', 'pd-server')).message).toBe('Error: flag needs an argument: --name');
  expect(err(() => parseFlags(['--bogus'], specs, 'clap', 'tikv-server')).message).toContain("Found argument '--bogus'");
});

test('TOML helpers: unknown keys and Go durations', () => {
  expect(unknownKeys({ a: 1, b: { c: 1, d: 2 }, x: { y: 1 } }, { a: true, b: { c: true } })).toEqual(['b.d', 'x', 'x.y']);
  expect(parseGoDuration('30m')).toBe(1800000);
  expect(parseGoDuration('1h30m')).toBe(5400000);
  expect(() => parseGoDuration('30 minutes')).toThrow('time: invalid duration');
  expect(formatGoDuration(1800000)).toBe('30m0s');
});

test('versions compare like release numbers', () => {
  expect(versionAtLeast(parseVersion('v8.5.1'), 'v8.4.0')).toBe(true);
  expect(versionAtLeast(parseVersion('8.1.2'), 'v8.4.0')).toBe(false);
  expect(versionAtLeast(parseVersion('v4.0.5'), 'v4.0.5')).toBe(true);
  expect(() => parseVersion('latest')).toThrow();
});

test('wrapper text, TiUP paths, and the wrapper really runs the emulator', () => {
  expect(EMULATOR_BINARIES).toEqual({
    'pd-server': 'bin/pd-server', 'tikv-server': 'bin/tikv-server', 'tidb-server': 'bin/tidb-server', tiflash: 'bin/tiflash/tiflash', cdc: 'bin/cdc',
    pump: 'bin/pump', drainer: 'bin/drainer', // run_pump.sh.tpl `exec bin/pump`, run_drainer.sh.tpl `exec bin/drainer`
    'ng-monitoring-server': 'bin/ng-monitoring-server', // run_prometheus.sh.tpl `[ -e "bin/ng-monitoring-server" ]`
  });
  const text = emulatorWrapper('tiflash', { version: 'v7.5.0' });
  expect(text.split('\n').slice(0, 3)).toEqual([
    '#!/bin/sh',
    '# tiseal lab EMULATOR of tiflash (test equipment, not the real component)',
    'export TISEAL_EMULATED_VERSION=v7.5.0',
  ]);
  expect(text).toContain('exec /usr/local/bin/node /opt/tiseal/dist/lab/emulators/tiflash.js "$@"');
  expect(() => emulatorWrapper('tikv-server', { version: 'nightly' })).toThrow();

  const build = buildEmulators();
  const dir = tmpDir('wrapper');
  const bin = path.join(dir, 'bin/pd-server');
  fs.mkdirSync(path.dirname(bin), { recursive: true });
  fs.writeFileSync(bin, emulatorWrapper('pd-server', { version: 'v6.5.3', nodePath: process.execPath, emulatorDir: build }), { mode: 0o755 });
  const r = spawnSync(bin, ['-V'], { encoding: 'utf8', env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules') } });
  fs.rmSync(dir, { recursive: true, force: true });
  expect(r.status).toBe(0);
  expect(r.stdout).toContain('Release Version: v6.5.3');
});
