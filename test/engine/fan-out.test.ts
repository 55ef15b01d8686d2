import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { collectStatus } from '../../src/commands/tls/status';
import { toGlobalOptions } from '../../src/options';
import { FakePool } from '../../src/ssh/fake';
import { ClusterDir } from '../../src/state/cluster-dir';
import { loadTopology } from '../../src/topology';
import { CHANGE_CONCURRENCY, READ_CONCURRENCY } from '../../src/util/concurrency';

describe('fan-out width', () => {
  it('changing verbs go CHANGE_CONCURRENCY wide and read-only verbs wider, unless -c sets both', () => {
    expect(CHANGE_CONCURRENCY).toBe(5);
    expect(READ_CONCURRENCY).toBeGreaterThan(CHANGE_CONCURRENCY);
    expect(toGlobalOptions({})).toMatchObject({ concurrency: CHANGE_CONCURRENCY, readConcurrency: READ_CONCURRENCY });
    expect(toGlobalOptions({ concurrency: '7' })).toMatchObject({ concurrency: 7, readConcurrency: 7 });
  });
});

describe('tls status over many hosts', () => {
  // 40 TiKV hosts (loopback addresses: the probes meet closed ports), the first also runs PD.
  const HOSTS = 40;
  let dir: string;
  let topoFile: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-fanout-'));
    topoFile = path.join(dir, 'many.yaml');
    const ips = Array.from({ length: HOSTS }, (_, i) => `127.0.1.${i + 1}`);
    fs.writeFileSync(topoFile, ['global:', '  user: tidb', 'pd_servers:', `  - host: ${ips[0]}`, 'tikv_servers:', ...ips.map((ip) => `  - host: ${ip}`), ''].join('\n'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** The most hosts held (asked for and not yet released) at any moment, and the releases per host. */
  function held(events: string[]): { peak: number; releases: Map<string, number>; getAfterRelease: string[] } {
    const open = new Set<string>();
    const releases = new Map<string, number>();
    const getAfterRelease: string[] = [];
    let peak = 0;
    for (const e of events) {
      const [op, key] = e.split(' ');
      if (op === 'get') {
        if (releases.has(key)) getAfterRelease.push(key);
        open.add(key);
        peak = Math.max(peak, open.size);
      } else {
        open.delete(key);
        releases.set(key, (releases.get(key) ?? 0) + 1);
      }
    }
    return { peak, releases, getAfterRelease };
  }

  async function run(raw: Record<string, unknown>, releaseHosts: boolean) {
    const topology = loadTopology(topoFile);
    const pool = new FakePool();
    const opts = { ...toGlobalOptions(raw), stateDir: path.join(dir, 'state') };
    const report = await collectStatus({ topology, cluster: new ClusterDir(opts.stateDir, 'many'), pool }, opts, { releaseHosts });
    return { topology, pool, report };
  }

  it('reads READ_CONCURRENCY hosts at once and closes each host once its instances are read', async () => {
    const { topology, pool, report } = await run({}, true);
    expect(report.instances.map((i) => i.id + '@' + i.host)).toEqual(topology.instances.map((i) => i.id + '@' + i.host));
    const h = held(pool.events);
    expect(h.peak).toBe(READ_CONCURRENCY); // never the cluster's size: connections (and memory) stay at the width
    expect(h.releases.size).toBe(HOSTS);
    expect([...h.releases.values()].every((n) => n === 1)).toBe(true);
    expect(h.getAfterRelease).toEqual([]); // the PD and TiKV of the first host were both read before it closed
  });

  it('-c sets the width of a read-only verb too', async () => {
    const { pool } = await run({ concurrency: '7' }, true);
    expect(held(pool.events).peak).toBe(7);
  });

  it('keeps the connections when the caller needs the hosts again (audit)', async () => {
    const { pool } = await run({}, false);
    expect(pool.events.filter((e) => e.startsWith('release'))).toEqual([]);
  });
});
