/** PD's evict-leader scheduler API as tiseal calls it, against a fake PD answering PD's shapes and codes. */
import { PdSchedulers } from '../../src/pd/schedulers';
import { FakePd } from '../support/fake-pd';

let pd: FakePd;
beforeEach(async () => {
  pd = await new FakePd([
    { id: '1', address: '10.0.0.1:20160', stateName: 'Up', leaders: 3 },
    { id: '4', address: '10.0.0.2:20160', stateName: 'Up', leaders: 0 },
  ]).start();
});
afterEach(() => pd.close());

describe('PdSchedulers', () => {
  it('adds, lists and removes the evict-leader scheduler of one store', async () => {
    const s = new PdSchedulers(pd.client());
    expect(await s.evictedStores()).toEqual(new Set());
    await s.addEvictLeader('1');
    expect(await s.list()).toContain('evict-leader-scheduler');
    expect(await s.evictedStores()).toEqual(new Set(['1']));
    expect(await s.removeEvictLeader('1')).toBe('removed');
    expect(await s.evictedStores()).toEqual(new Set());
    expect(pd.requests).toContain('DELETE /pd/api/v1/schedulers/evict-leader-scheduler-1');
  });

  it('takes a scheduler that is already gone (404) as removed, like TiUP', async () => {
    expect(await new PdSchedulers(pd.client()).removeEvictLeader('4')).toBe('not-found');
  });

  it('reads leader_count, which PD omits when it is 0', async () => {
    const s = new PdSchedulers(pd.client());
    expect(await s.store('1')).toEqual({ id: '1', stateName: 'Up', leaderCount: 3 });
    expect(await s.store('4')).toEqual({ id: '4', stateName: 'Up', leaderCount: 0 });
  });

  it('cannot tell the stores of a scheduler whose config PD does not list', async () => {
    pd.configList = false;
    pd.evicting.add('4');
    expect(await new PdSchedulers(pd.client()).evictedStores()).toBeUndefined();
  });

  it('refuses a store ID that is not a number before calling PD, and names PD on an error answer', async () => {
    const s = new PdSchedulers(pd.client());
    await expect(s.removeEvictLeader('1; rm -rf /')).rejects.toThrow(/store ID must be a decimal uint64/);
    expect(pd.requests).toEqual([]);
    await expect(s.addEvictLeader('9')).rejects.toThrow(new RegExp(`PD ${pd.endpoint} refused evict-leader-scheduler for store 9: HTTP 500: .*store id 9 not found`));
  });
});
