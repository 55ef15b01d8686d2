/**
 * run_pump.sh / run_drainer.sh against TiUP's own templates: test/fixtures/tiup-templates/ holds
 * pingcap/tiup embed/templates/scripts/run_{pump,drainer}.sh.tpl verbatim (master 842f05cc), rendered
 * here with Go text/template's rules (`{{-` trims the whitespace before it) and the values TiUP's
 * pkg/cluster/spec/pump.go and drainer.go InitConfig put in PumpScript / DrainerScript.
 */
import * as fs from 'fs';
import * as path from 'path';
import { renderRunScript } from '../../src/render';
import { example, one, ROOT, TIUP_FULL, topo } from './helpers';

const upstream = (name: string): string => fs.readFileSync(path.join(ROOT, 'test', 'fixtures', 'tiup-templates', name), 'utf8');

/** The subset of Go's text/template these two templates use: {{.X}}, if/else/end, `{{-` / `-}}` trimming. */
function goTemplate(src: string, data: Record<string, string>): string {
  const parts: Array<{ text?: string; action?: string; trimLeft?: boolean; trimRight?: boolean }> = [];
  const re = /{{(-\s)?\s*(.*?)\s*(\s-)?}}/g;
  let last = 0;
  for (const m of src.matchAll(re)) {
    parts.push({ text: src.slice(last, m.index) });
    parts.push({ action: m[2], trimLeft: !!m[1], trimRight: !!m[3] });
    last = (m.index ?? 0) + m[0].length;
  }
  parts.push({ text: src.slice(last) });
  for (let i = 0; i < parts.length; i++) {
    if (parts[i].trimLeft) parts[i - 1].text = parts[i - 1].text!.replace(/\s+$/, '');
    if (parts[i].trimRight) parts[i + 1].text = parts[i + 1].text!.replace(/^\s+/, '');
  }
  let out = '';
  const stack: boolean[] = [];
  const on = (): boolean => stack.every(Boolean);
  for (const p of parts) {
    if (p.text !== undefined) {
      if (on()) out += p.text;
      continue;
    }
    const a = p.action!;
    if (a.startsWith('if ')) stack.push(!!data[a.slice(4)]);
    else if (a === 'else') stack.push(!stack.pop());
    else if (a === 'end') stack.pop();
    else if (a.startsWith('.')) {
      if (!(a.slice(1) in data)) throw new Error(`template field ${a} not given`);
      if (on()) out += data[a.slice(1)];
    } else throw new Error(`unsupported action ${a}`);
  }
  return out;
}

describe('the same text as TiUP renders', () => {
  // Global data_dir "data" is relative: TiUP puts it under each deploy dir; the drainer's is absolute.
  const full = example(TIUP_FULL);
  const pds = (scheme: string): string => ['n3', 'n4', 'n5'].map((h) => `${scheme}://${h}:2379`).join(',');

  test.each([false, true])("TiUP's full topology, TLS %s", (tls) => {
    const scheme = tls ? 'https' : 'http';
    for (const host of ['n3', 'n4', 'n5']) {
      const pump = one(full, 'pump', host);
      expect(renderRunScript(pump, full, { tls })).toBe(
        goTemplate(upstream('run_pump.sh.tpl'), {
          DeployDir: '/home/tidb/deploy/pump-8250', NumaNode: '', NodeID: `${host}:8250`, Addr: '0.0.0.0:8250', AdvertiseAddr: `${host}:8250`,
          PD: pds(scheme), DataDir: '/home/tidb/deploy/pump-8250/data', LogDir: '/home/tidb/deploy/pump-8250/log',
        }),
      );
    }
    // drainer.go: Addr is the host itself (no listen host), data_dir as written, no --advertise-addr.
    expect(renderRunScript(one(full, 'drainer'), full, { tls })).toBe(
      goTemplate(upstream('run_drainer.sh.tpl'), {
        DeployDir: '/home/tidb/deploy/drainer-8249', NumaNode: '', NodeID: 'n1:8249', Addr: 'n1:8249', PD: pds(scheme),
        DataDir: '/home/tidb/data/drainer-8249/data', LogDir: '/home/tidb/deploy/drainer-8249/log',
      }),
    );
  });

  test('numa_node, IPv6 hosts, global listen_host, ports and a PD advertise_client_addr', () => {
    const t = topo(
      [
        'global:',
        '  listen_host: "::"',
        '  deploy_dir: /srv/deploy',
        '  data_dir: /srv/data',
        'pd_servers:',
        '  - host: "fd00::1"',
        '  - host: 10.0.0.2',
        '    advertise_client_addr: "https://pd.example:2379"',
        'pump_servers:',
        '  - host: "fd00::5"',
        '    port: 18250',
        '    numa_node: "0,1"',
        'drainer_servers:',
        '  - host: "fd00::6"',
        '    numa_node: "1"',
      ].join('\n'),
    );
    const pd = 'https://[fd00::1]:2379,https://pd.example:2379';
    expect(renderRunScript(one(t, 'pump'), t, { tls: true })).toBe(
      goTemplate(upstream('run_pump.sh.tpl'), {
        DeployDir: '/srv/deploy/pump-18250', NumaNode: '0,1', NodeID: '[fd00::5]:18250', Addr: '[::]:18250', AdvertiseAddr: '[fd00::5]:18250',
        PD: pd, DataDir: '/srv/data/pump-18250', LogDir: '/srv/deploy/pump-18250/log',
      }),
    );
    expect(renderRunScript(one(t, 'drainer'), t, { tls: true })).toBe(
      goTemplate(upstream('run_drainer.sh.tpl'), {
        DeployDir: '/srv/deploy/drainer-8249', NumaNode: '1', NodeID: '[fd00::6]:8249', Addr: '[fd00::6]:8249', PD: pd,
        DataDir: '/srv/data/drainer-8249', LogDir: '/srv/deploy/drainer-8249/log',
      }),
    );
  });

  test('exact text of run_pump.sh (readable golden)', () => {
    expect(renderRunScript(one(full, 'pump', 'n3'), full, { tls: true })).toBe(
      [
        '#!/bin/bash',
        'set -e',
        '',
        '# WARNING: This file was auto-generated. Do not edit!',
        '#          All your edit might be overwritten!',
        'DEPLOY_DIR=/home/tidb/deploy/pump-8250',
        '',
        'cd "${DEPLOY_DIR}" || exit 1',
        'exec bin/pump \\',
        '    --node-id="n3:8250" \\',
        '    --addr="0.0.0.0:8250" \\',
        '    --advertise-addr="n3:8250" \\',
        '    --pd-urls="https://n3:2379,https://n4:2379,https://n5:2379" \\',
        '    --data-dir="/home/tidb/deploy/pump-8250/data" \\',
        '    --log-file="/home/tidb/deploy/pump-8250/log/pump.log" \\',
        '    --config=conf/pump.toml 2>> "/home/tidb/deploy/pump-8250/log/pump_stderr.log"',
        '',
      ].join('\n'),
    );
  });
});
