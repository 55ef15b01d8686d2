import { FakePool } from '../../../src/ssh';
import { savePdStep, scaleInStep } from '../../../src/tasks/pd/scale-in';
import { scaleOutStep } from '../../../src/tasks/pd/scale-out';
import { parseTopology } from '../../../src/topology';
import type { PdClient } from '../../../src/pd/client';
import { fakeTlsContext } from '../../support/tls-context';

const ONE_PD = `global:
  user: tidb
pd_servers:
  - host: 10.0.0.1
tikv_servers:
  - host: 10.0.0.1
tidb_servers:
  - host: 10.0.0.1
`;

describe('a cluster with a single PD', () => {
  it('skips saving, scaling in and scaling out PD', async () => {
    const topology = parseTopology(ONE_PD, 'one.yaml');
    // PD's answer for a one-member cluster; the steps must not need anything else from it.
    const pd = { members: async () => ({ clusterId: '1', members: [{ name: 'pd-10.0.0.1-2379', memberId: '1', peerUrls: ['http://10.0.0.1:2380'], clientUrls: ['http://10.0.0.1:2379'] }], leader: { name: 'pd-10.0.0.1-2379', memberId: '1', peerUrls: [], clientUrls: [] } }) } as unknown as PdClient;
    const pool = new FakePool();
    const ctx = fakeTlsContext({ runId: 'r', topology, cluster: 'one', opts: { concurrency: 2 }, pool, pd, keepPd: undefined, removedPds: [], flags: { keyType: 'rsa' } });
    for (const step of [savePdStep, scaleInStep, scaleOutStep]) {
      const d = await step.decide(ctx);
      expect(d.actions).toEqual([]);
      expect(d.reason).toMatch(/single PD/);
    }
    expect(ctx.keepPd?.name).toBe('pd-10.0.0.1-2379');
    expect(pool.executors.size).toBe(0); // nothing touched a host
  });
});
