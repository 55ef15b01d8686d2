import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { collectStatus, InstanceStatus, judge, renderStatus, statusExitCode, StatusReport, WARN_DAYS } from '../../src/commands/tls/status';
import { tlsPaths } from '../../src/components';
import type { GlobalOptions } from '../../src/options';
import { issueLeaf } from '../../src/pki';
import { FakePool } from '../../src/ssh/fake';
import { ClusterDir } from '../../src/state/cluster-dir';
import { parseTopology } from '../../src/topology';
import { LoopbackPki, Served } from '../support/loopback-tls';

jest.setTimeout(60_000);

const day = 86_400_000;
function inst(over: Partial<InstanceStatus>, daysLeft: number): InstanceStatus {
  return {
    id: 'tikv-20160', role: 'tikv', host: '10.0.0.1', unit: 'tikv-20160.service', configured: 'on',
    caPath: '/d/tls/ca.crt', certPath: '/d/tls/tikv.crt', keyPath: '/d/tls/tikv.pem',
    ports: [{ name: 'port', port: 20160, live: 'tls', verified: true, daysLeft, notAfter: new Date(Date.now() + daysLeft * day).toISOString() }],
    level: 'ok', problems: [], ...over,
  };
}

describe('tls status levels and exit codes', () => {
  it('judges: warning under 30 days, error when expired, unverified, or config and live disagree', () => {
    const cases: Array<[InstanceStatus, 'ok' | 'warning' | 'error', RegExp | null]> = [
      [inst({}, 200), 'ok', null],
      [inst({}, 12), 'warning', /fewer than 30 days/],
      [inst({}, -1), 'error', /EXPIRED/],
      [inst({ ports: [{ name: 'port', port: 20160, live: 'tls', verified: false, error: 'unable to get local issuer certificate' }] }, 200), 'error', /not verified/],
      [inst({ ports: [{ name: 'port', port: 20160, live: 'plain', verified: false }] }, 200), 'error', /serves plaintext/],
      [inst({ configured: 'off', ports: [{ name: 'port', port: 20160, live: 'plain', verified: false }] }, 200), 'ok', null],
      [inst({ configured: 'partial' }, 200), 'error', /half configured/],
    ];
    for (const [i, level, why] of cases) {
      judge(i);
      expect(i.level).toBe(level);
      if (why) expect(i.problems.join('; ')).toMatch(why);
    }
  });
  it('0 when every instance is fine, 3 for a warning only, 1 for any error', () => {
    const ok: StatusReport = { cluster: 'c', instances: [inst({}, 200)], level: 'ok' };
    expect(statusExitCode(ok)).toBe(0);
    expect(statusExitCode({ ...ok, level: 'warning' })).toBe(3);
    expect(statusExitCode({ ...ok, level: 'error' })).toBe(1);
  });
  it('renders a readable table with the worst level', () => {
    const r: StatusReport = { cluster: 'c', instances: [inst({ level: 'warning', problems: ['certificate expires in fewer than 30 days'] }, 12)], level: 'warning' };
    const text = renderStatus(r);
    expect(text).toMatch(/tikv\s+10\.0\.0\.1\s+on\s+20160:tls\s+yes/);
    expect(text).toMatch(/warning: certificate expires in fewer than 30 days/);
    expect(text).toMatch(/Overall: warning/);
    expect(text).toMatch(/CA:\s+none/);
  });
});

/**
 * The expiry boundary. Days left are whole days, floored (a certificate with 29.5 days left has
 * 29); a warning while 0 ≤ days left < WARN_DAYS (30), an error below 0. So 30 days left is ok,
 * 29 warns, 0 (expires within the day) warns, -1 (expired) is an error.
 */
describe('tls status: the expiry boundary', () => {
  it('WARN_DAYS is 30', () => expect(WARN_DAYS).toBe(30));

  it.each([
    [31, 'ok', []],
    [30, 'ok', []],
    [29, 'warning', ['certificate expires in fewer than 30 days']],
    [1, 'warning', ['certificate expires in fewer than 30 days']],
    [0, 'warning', ['certificate expires in fewer than 30 days']],
    [-1, 'error', [expect.stringMatching(/^port 20160: certificate EXPIRED /)]],
  ] as const)('judge: %i days left → %s', (daysLeft, level, problems) => {
    const i = inst({}, daysLeft);
    judge(i);
    expect(i.level).toBe(level);
    expect(i.problems).toEqual(problems);
  });

  describe('collectStatus against loopback TLS servers (days counted from the served certificate)', () => {
    let dir: string;
    let pki: LoopbackPki;
    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-tls-status-'));
      pki = await LoopbackPki.create(dir, 'c');
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    /** One PD on 127.0.0.1 whose two ports serve `serve`'s certificates; its status row. */
    async function statusOf(serve: () => Promise<Served[]>): Promise<InstanceStatus> {
      const [a, b] = await serve();
      try {
        const text = `pd_servers:\n  - host: 127.0.0.1\n    client_port: ${a.port}\n    peer_port: ${b.port}\n`;
        const topology = parseTopology(text, path.join(dir, 't.yaml'));
        const inst = topology.instances[0];
        const pool = new FakePool();
        const h = pool.host('127.0.0.1');
        const p = tlsPaths(inst);
        h.addFile(inst.configFiles[0], `[security]\ncacert-path = "${p.ca}"\ncert-path = "${p.cert}"\nkey-path = "${p.key}"\n`, { owner: 'tidb' });
        h.addFile(inst.runScript, `#!/bin/bash\nexec bin/pd-server \\\n    --client-urls="https://0.0.0.0:${a.port}" \\\n    --peer-urls="https://0.0.0.0:${b.port}"\n`, { owner: 'tidb', mode: 0o755 });
        h.onExec(/^systemctl show -p ActiveState --value /, () => 'inactive\n');
        const report = await collectStatus({ topology, cluster: new ClusterDir(dir, 'c'), pool }, { stateDir: dir } as GlobalOptions);
        expect(report.instances[0].configured).toBe('on');
        return report.instances[0];
      } finally {
        await Promise.all([a.close(), b.close()]);
      }
    }

    it.each([
      [30, 'ok'],
      [29, 'warning'],
      [0, 'warning'],
      [-1, 'error'],
    ] as const)('notAfter %i days + 12 h from now: that many whole days left, %s', async (daysLeft, level) => {
      const st = await statusOf(() => Promise.all([pki.serve('pd', { daysLeft }), pki.serve('pd', { daysLeft })]));
      expect(st.ports.map((p) => [p.live, p.daysLeft])).toEqual([['tls', daysLeft], ['tls', daysLeft]]);
      expect(st.level).toBe(level);
    });

    it('a 30-day certificate issued a second ago has 29 whole days left: it warns at once', async () => {
      const leaf = await issueLeaf(pki.ca, { commonName: 'pd', hosts: ['127.0.0.1'], keyType: 'ecdsa', days: 30, now: new Date(Date.now() - 1000) });
      const serve = () => pki.serveCert(leaf);
      const st = await statusOf(() => Promise.all([serve(), serve()]));
      expect(st.ports.map((p) => p.daysLeft)).toEqual([29, 29]);
      expect(st.level).toBe('warning');
    });
  });
});
