/** The certificate benchmark with small counts (its figures come from `npm run bench`, never from here). */
import { issueMany, issuePooled, type CertRun } from '../../bench/certs';
import { parseArgs } from '../../bench/args';
import { renderResults, ECDSA_GOAL } from '../../bench/report';

jest.setTimeout(60_000); // RSA keys on a loaded two-core machine

describe('certificate benchmark', () => {
  let ecdsa: CertRun;
  let pooled: CertRun;
  beforeAll(async () => {
    ecdsa = await issueMany('native', 4, 1, 'ecdsa');
    pooled = await issuePooled(3, 2);
  });

  it('measures ECDSA leaves and RSA leaves from the worker pool', () => {
    expect(ecdsa).toMatchObject({ keyType: 'ecdsa', keyGen: 'native', concurrency: 1, leaves: 4 });
    expect(pooled).toMatchObject({ keyType: 'rsa', keyGen: 'pool', concurrency: 2, leaves: 3 });
    for (const r of [ecdsa, pooled]) {
      expect(r.totalMs).toBeGreaterThanOrEqual(r.leavesMs);
      expect(r.leavesMs).toBeGreaterThan(0);
    }
  });

  it('reports both next to the RSA figures, and judges the ECDSA goal only for its leaf count', () => {
    const native: CertRun = { keyGen: 'native', concurrency: 1, leaves: 3, caMs: 100, leavesMs: 900, totalMs: 1000, perLeafMs: 300 }; // an entry from before keyType
    const base = { date: '2026-11-30T00:00:00.000Z', machine: 'm', args: parseArgs(['--only', 'certs']) };
    const md = renderResults({ ...base, certs: [ecdsa, native, { ...pooled, totalMs: 250 }] });
    expect(md).toMatch(/\| ECDSA P-256 \| native \(Node's crypto\) \| 1 \| 4 \|/);
    expect(md).toMatch(/\| RSA 2048 \| native \(Node's crypto\) \| 1 \| 3 \|/);
    expect(md).toMatch(/\| RSA 2048 \| worker pool \(2 threads\) \| - \| 3 \|/);
    expect(md).toContain(`(the goal, under 2.00 s, is for ${ECDSA_GOAL.leaves} leaves)`);
    expect(md).toContain('CA + 3 leaves **4.0 ×** faster than native one at a time.');
    const withWide = renderResults({ ...base, certs: [native, { ...native, concurrency: 8, totalMs: 500 }, { ...pooled, totalMs: 250 }] });
    expect(withWide).toContain('faster than native one at a time; native 8 at a time (Node\'s libuv threads, the same cores) took 2.0 × the pool\'s time.');
    const at200 = (totalMs: number) => renderResults({ ...base, certs: [{ ...ecdsa, leaves: 200, totalMs }] });
    expect(at200(1500)).toContain('CA + 200 leaves in 1.50 s; goal under 2.00 s for 200 leaves — **met**');
    expect(at200(2500)).toContain('— **NOT met**');
  });
});
