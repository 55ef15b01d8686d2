import { instanceSans, leafSans, parseExtraSans } from '../../../src/tasks/certs/issue';
import { createCA, issueLeaf } from '../../../src/pki';
import { parseTopology } from '../../../src/topology';

const TOPO = `global:
  user: tidb
pd_servers:
  - host: 10.0.1.11
    manage_host: pd1.mgmt.example
  - host: db-pd-2.example
tikv_servers:
  - host: 10.0.1.17
    advertise_addr: tikv1.example:20160
`;

describe('leaf SANs', () => {
  const t = parseTopology(TOPO, 't.yaml');
  const extra = parseExtraSans(['vip.example,10.9.9.9', '10.0.1.17=tikv-lb.example', 'db-pd-2.example=pd2.alias']);

  it('parses --extra-san for every leaf and for one host', () => {
    expect(extra.all).toEqual(['vip.example', '10.9.9.9']);
    expect(extra.byHost.get('10.0.1.17')).toEqual(['tikv-lb.example']);
  });
  it('covers host, manage_host, advertise addresses and extra SANs', () => {
    const pd1 = t.instances.find((i) => i.host === '10.0.1.11')!;
    expect(instanceSans(pd1, extra)).toEqual(expect.arrayContaining(['10.0.1.11', 'pd1.mgmt.example', 'vip.example', '10.9.9.9']));
    expect(instanceSans(pd1, extra)).not.toContain('tikv-lb.example');
    const tikv = t.instances.find((i) => i.role === 'tikv')!;
    expect(instanceSans(tikv, extra)).toEqual(expect.arrayContaining(['10.0.1.17', 'tikv1.example', 'tikv-lb.example']));
    const pd2 = t.instances.find((i) => i.host === 'db-pd-2.example')!;
    expect(instanceSans(pd2, extra)).toEqual(expect.arrayContaining(['db-pd-2.example', 'pd2.alias']));
  });

  it('a reissued leaf keeps every name of the one it replaces (an --extra-san given once is in no file but the certificate)', async () => {
    const tikv = t.instances.find((i) => i.role === 'tikv')!;
    const ca = await createCA({ cluster: 't', keyType: 'ecdsa' });
    const first = await issueLeaf(ca, { commonName: 'tikv', hosts: instanceSans(tikv, parseExtraSans(['lb.example,10.9.9.9'])), keyType: 'ecdsa' });
    const none = parseExtraSans(undefined);
    expect(instanceSans(tikv, none)).not.toContain('lb.example');
    const kept = leafSans(tikv, none, first.certPem);
    expect(kept).toEqual(expect.arrayContaining(['10.0.1.17', 'tikv1.example', 'lb.example', '10.9.9.9']));
    expect(new Set(kept.map((n) => n.toLowerCase())).size).toBe(kept.length);
    expect(leafSans(tikv, none, undefined)).toEqual(instanceSans(tikv, none));
    expect(leafSans(tikv, none, 'not a certificate')).toEqual(instanceSans(tikv, none));
  });
});
