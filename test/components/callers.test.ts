import { allowedCallers, callerMatrix, CONTROL_CN, pdAllowListSkipped } from '../../src/components/callers';

describe('caller allow-lists (--verify-cn)', () => {
  it('PD from v8.4.0 takes every caller plus the control client', () => {
    const l = allowedCallers('pd', 'v8.5.1')!;
    expect(l.cns).toEqual(expect.arrayContaining(['pd', 'tikv', 'tidb', 'tiflash', 'cdc', 'prometheus', CONTROL_CN]));
    expect(l.note).toBeUndefined();
    expect(allowedCallers('pd', 'v8.4.0')!.cns.length).toBeGreaterThan(1);
  });
  // tikv/pd v8.1.0 pkg/utils/grpcutil/grpcutil.go: ToTLSInfo puts GetOneAllowedCN() into etcd's
  // TLSInfo.AllowedCN, which ClientConfig() also uses: PD's own calls then require that CN of TiKV/TiDB/TiFlash.
  it('PD before v8.4.0 gets no list at all, with the reason (its one CN would also bind its outgoing calls)', () => {
    const l = allowedCallers('pd', 'v8.1.2')!;
    expect(l.cns).toEqual([]);
    expect(l.note).toMatch(/no cert-allowed-cn.*servers it calls/);
    expect(allowedCallers('pd', 'v6.5.0')!.cns).toEqual([]);
    expect(pdAllowListSkipped('v8.3.0')).toBe(l.note?.replace('v8.1.2', 'v8.3.0'));
    expect(pdAllowListSkipped('v8.4.0')).toBeUndefined();
    expect(pdAllowListSkipped(undefined)).toBeUndefined();
  });
  it('TiFlash lists Prometheus (its metrics port checks cert_allowed_cn under TLS)', () => {
    expect(allowedCallers('tiflash', 'v8.5.1')!.cns).toContain('prometheus');
  });
  it('TiKV accepts its peers, TiDB, TiFlash, CDC and the control client, but not Prometheus on gRPC', () => {
    const l = allowedCallers('tikv', 'v8.5.1')!.cns;
    expect(l).toEqual(expect.arrayContaining(['tikv', 'tidb', 'tiflash', 'cdc', CONTROL_CN]));
    expect(l).not.toContain('prometheus');
  });
  it('components without a CN setting get none', () => {
    expect(allowedCallers('grafana', 'v8.5.1')).toBeUndefined();
    // TiCDC checks the CN of the PD it calls over HTTP against its own list (tiflow pkg/httputil).
    expect(allowedCallers('cdc', 'v8.5.1')!.cns).toEqual(['cdc', 'pd', 'prometheus', 'tiseal']);
  });
  it('every list includes the control client', () => {
    for (const { callers } of callerMatrix()) expect(callers).toContain(CONTROL_CN);
  });
});
