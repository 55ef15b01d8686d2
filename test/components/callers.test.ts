import { allowedCallers, callerMatrix, CONTROL_CN } from '../../src/components/callers';

describe('caller allow-lists (--verify-cn)', () => {
  it('PD from v8.4.0 takes every caller plus the control client', () => {
    const l = allowedCallers('pd', 'v8.5.1')!;
    expect(l.cns).toEqual(expect.arrayContaining(['pd', 'tikv', 'tidb', 'tiflash', 'cdc', 'prometheus', CONTROL_CN]));
    expect(l.note).toBeUndefined();
    expect(allowedCallers('pd', 'v8.4.0')!.cns.length).toBeGreaterThan(1);
  });
  it('PD before v8.4.0 gets exactly one CN, with the reason', () => {
    const l = allowedCallers('pd', 'v8.1.2')!;
    expect(l.cns).toEqual(['pd']);
    expect(l.note).toMatch(/one CN.*peer port/);
    expect(allowedCallers('pd', 'v7.5.0')!.cns).toEqual(['pd']);
  });
  it('TiKV accepts its peers, TiDB, TiFlash, CDC and the control client, but not Prometheus on gRPC', () => {
    const l = allowedCallers('tikv', 'v8.5.1')!.cns;
    expect(l).toEqual(expect.arrayContaining(['tikv', 'tidb', 'tiflash', 'cdc', CONTROL_CN]));
    expect(l).not.toContain('prometheus');
  });
  it('components without a CN setting get none', () => {
    expect(allowedCallers('grafana', 'v8.5.1')).toBeUndefined();
    expect(allowedCallers('cdc', 'v8.5.1')!.cns).toEqual(['cdc', 'prometheus', 'tiseal']);
  });
  it('every list includes the control client', () => {
    for (const { callers } of callerMatrix()) expect(callers).toContain(CONTROL_CN);
  });
});
