import { renderSystemdUnit } from '../../src/render';
import type { Instance } from '../../src/topology/types';
import { EXAMPLES, LAB_DEFAULT, example, rendered, topo } from './helpers';

/** Parse a unit file into section → key → values (systemd-style, repeated keys kept). */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const m = /^\[(.+)\]$/.exec(line);
    if (m) {
      section = m[1];
      out[section] = {};
      continue;
    }
    const eq = line.indexOf('=');
    expect(eq).toBeGreaterThan(0);
    const [k, v] = [line.slice(0, eq), line.slice(eq + 1)];
    (out[section][k] ??= []).push(v);
  }
  return out;
}

describe.each([...EXAMPLES, LAB_DEFAULT])('systemd units for %s', (file) => {
  const t = example(file);
  test.each(rendered(t).map((i) => [i.unit, i] as [string, Instance]))('%s', (_u, inst) => {
    const u = parseUnit(renderSystemdUnit(inst, t));
    expect(Object.keys(u)).toEqual(['Unit', 'Service', 'Install']);
    expect(u.Unit.Description).toEqual([`${inst.role} service`]);
    expect(u.Unit.After).toEqual(['syslog.target network.target remote-fs.target nss-lookup.target']);
    expect(u.Service.User).toEqual([t.global.user]);
    expect(u.Service.ExecStart).toEqual([`/bin/bash -c '${inst.deployDir}/scripts/run_${inst.role}.sh'`]);
    expect(`${inst.deployDir}/scripts/run_${inst.role}.sh`).toBe(inst.runScript);
    expect(u.Service.Restart).toEqual(['always']);
    expect(u.Service.RestartSec).toEqual(['15s']);
    expect(u.Service.LimitNOFILE).toEqual(['1000000']);
    expect(u.Service.LimitSTACK).toEqual(['10485760']);
    expect(u.Install.WantedBy).toEqual(['multi-user.target']);
  });
});

test('exact text of a plain unit (what TiUP writes)', () => {
  const t = example(LAB_DEFAULT);
  const tikv = t.instances.find((i) => i.role === 'tikv')!;
  expect(renderSystemdUnit(tikv, t)).toBe(
    [
      '[Unit]',
      'Description=tikv service',
      'After=syslog.target network.target remote-fs.target nss-lookup.target',
      '',
      '[Service]',
      'LimitNOFILE=1000000',
      'LimitSTACK=10485760',
      'User=tidb',
      "ExecStart=/bin/bash -c '/tidb-deploy/tikv-20160/scripts/run_tikv.sh'",
      'Restart=always',
      '',
      'RestartSec=15s',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n'),
  );
});

test('resource_control: global values, overridden per instance', () => {
  const t = topo(
    [
      'global:',
      '  user: ops',
      '  resource_control:',
      '    memory_limit: 2G',
      '    cpu_quota: 200%',
      'pd_servers:',
      '  - host: 10.1.1.9',
      'tikv_servers:',
      '  - host: 10.1.1.1',
      '    resource_control:',
      '      memory_limit: 4G',
      '  - host: 10.1.1.2',
    ].join('\n'),
  );
  const [a, b] = t.instances.filter((i) => i.role === 'tikv').map((i) => parseUnit(renderSystemdUnit(i, t)).Service);
  expect(a.MemoryLimit).toEqual(['4G']);
  expect(a.CPUQuota).toEqual(['200%']);
  expect(b.MemoryLimit).toEqual(['2G']);
  expect(a.User).toEqual(['ops']);
  expect(a.IOReadBandwidthMax).toBeUndefined();
});
