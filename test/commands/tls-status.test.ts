import { InstanceStatus, judge, renderStatus, statusExitCode, StatusReport } from '../../src/commands/tls/status';

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
