import { callerIdentityFinding } from '../../src/commands/audit';
import { clusterPdVersion, InstanceStatus, notePdAllowList, renderStatus, statusExitCode, StatusReport } from '../../src/commands/tls/status';
import type { PdClient } from '../../src/pd/client';
import { validate } from '../support/json-schema';
import * as schema from '../../docs/tls-status.schema.json';
import { parseTopology } from '../../src/topology';

// PD before v8.4.0 under --verify-cn gets no cert-allowed-cn (src/components/callers.ts
// pdAllowListSkipped; issue #12 item 6): tls status and audit say so instead of staying silent
// (status) or calling it a regression (audit FAIL).
function pd(over: Partial<InstanceStatus> = {}): InstanceStatus {
  return {
    id: 'pd-2379', role: 'pd', host: '10.0.0.1', unit: 'pd-2379.service', configured: 'on',
    caPath: '/d/tls/ca.crt', certPath: '/d/tls/pd.crt', keyPath: '/d/tls/pd.pem',
    ports: [{ name: 'client_port', port: 2379, live: 'tls', verified: true, daysLeft: 300 }], level: 'ok', problems: [], ...over,
  };
}
const tikv = (): InstanceStatus => ({ ...pd(), id: 'tikv-20160', role: 'tikv', unit: 'tikv-20160.service', allowedCn: ['pd', 'tidb', 'tikv', 'tiseal'] });

describe('tls status: a PD left without cert-allowed-cn says why', () => {
  it('notes each PD on TLS without a list at v8.3 under --verify-cn; the level and exit code stay ok', () => {
    const insts = [pd(), pd({ host: '10.0.0.2' }), tikv()];
    notePdAllowList(insts, true, 'v8.3.0');
    for (const p of insts.filter((i) => i.role === 'pd')) expect(p.notes).toEqual([expect.stringMatching(/^PD v8\.3\.0 gets no cert-allowed-cn: before v8\.4\.0 PD takes one CN/)]);
    expect(insts[2].notes).toBeUndefined();
    const report: StatusReport = { cluster: 'c', instances: insts, level: 'ok' };
    expect(statusExitCode(report)).toBe(0);
    const text = renderStatus(report);
    expect(text).toMatch(/^note: 10\.0\.0\.1:pd-2379: PD v8\.3\.0 gets no cert-allowed-cn/m);
    expect(text).toMatch(/^note: 10\.0\.0\.2:pd-2379: /m);
    expect(validate(schema, JSON.parse(JSON.stringify(report)))).toEqual([]);
  });

  it('says nothing at v8.4+, without --verify-cn, for a PD that has a list, or a PD off TLS', () => {
    const cases: Array<[InstanceStatus, boolean, string | undefined]> = [
      [pd(), true, 'v8.4.0'],
      [pd(), true, 'v8.5.1'],
      [pd(), false, 'v8.1.2'],
      [pd(), true, undefined], // unknown version: PD is not assumed old
      [pd({ allowedCn: ['pd'] }), true, 'v7.5.0'],
      [pd({ configured: 'off' }), true, 'v7.5.0'],
    ];
    for (const [i, verifyCn, v] of cases) {
      notePdAllowList([i], verifyCn, v);
      expect([v, verifyCn, i.notes]).toEqual([v, verifyCn, undefined]);
    }
  });

  it('takes the PD version from the topology first, then from PD itself', async () => {
    const asked: string[] = [];
    const client = () => ({ status: async () => (asked.push('status'), { version: 'v8.1.0' }) }) as unknown as PdClient;
    expect(await clusterPdVersion(parseTopology('component_versions:\n  pd: v7.5.1\npd_servers:\n  - host: h\n', 't.yaml'), client)).toBe('v7.5.1');
    expect(asked).toEqual([]);
    expect(await clusterPdVersion(parseTopology('pd_servers:\n  - host: h\n', 't.yaml'), client)).toBe('v8.1.0');
    const down = () => ({ status: async () => Promise.reject(new Error('refused')) }) as unknown as PdClient;
    expect(await clusterPdVersion(parseTopology('pd_servers:\n  - host: h\n', 't.yaml'), down)).toBeUndefined();
  });
});

describe('audit caller-identity for PD', () => {
  const o = { verifyCnRecorded: true, metaFile: '/s/meta.json' };
  it('PD v8.3 without a list under --verify-cn: WARN naming the reason and the way out, not FAIL', () => {
    const f = callerIdentityFinding(pd(), '10.0.0.1:pd-2379', { ...o, pdVersion: 'v8.3.0' });
    expect(f.level).toBe('WARN');
    expect(f.evidence).toMatch(/^no CN allow-list: PD v8\.3\.0 gets no cert-allowed-cn: before v8\.4\.0/);
    expect(f.fix).toMatch(/upgrade PD to v8\.4\.0/);
  });
  it('PD v8.4+ without a list under --verify-cn is still a FAIL; with a list a PASS; TiKV never gets the PD note', () => {
    expect(callerIdentityFinding(pd(), 't', { ...o, pdVersion: 'v8.4.0' })).toMatchObject({ level: 'FAIL', evidence: expect.stringContaining('/s/meta.json records --verify-cn') });
    expect(callerIdentityFinding(pd({ allowedCn: ['pd', 'tikv'] }), 't', { ...o, pdVersion: 'v8.5.0' })).toMatchObject({ level: 'PASS', evidence: 'allows CNs pd, tikv' });
    expect(callerIdentityFinding({ role: 'tikv' }, 't', { ...o, pdVersion: 'v7.5.0' })).toMatchObject({ level: 'FAIL', evidence: expect.not.stringContaining('cert-allowed-cn') });
  });
});
