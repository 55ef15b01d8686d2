import { instanceSans, parseExtraSans } from '../../../src/tasks/certs/issue';
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
});
