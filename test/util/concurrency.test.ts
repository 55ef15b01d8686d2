import { backoffDelays, mapLimit } from '../../src/util/concurrency';

describe('backoffDelays', () => {
  it('starts short and grows to its ceiling', () => {
    const next = backoffDelays(100, 1000, 1.5);
    expect(Array.from({ length: 8 }, next)).toEqual([100, 150, 225, 338, 507, 761, 1000, 1000]);
  });
});

describe('mapLimit', () => {
  it('keeps the order of its inputs and never runs more than the limit at once', async () => {
    let running = 0;
    let peak = 0;
    const out = await mapLimit([5, 1, 4, 2, 3], 2, async (x) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setImmediate(r));
      running--;
      return x * 10;
    });
    expect(out).toEqual([50, 10, 40, 20, 30]);
    expect(peak).toBe(2);
  });
});
