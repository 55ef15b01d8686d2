/**
 * Rolling store restarts evict leaders first, as TiUP's PreRestart/PostRestart: PD's
 * evict-leader scheduler added (after a marker on the store's host), leader_count 0 awaited
 * (bounded), restart, Up, scheduler and marker removed, one store at a time. The fake PD speaks
 * HTTP (test/support/fake-pd.ts); each store's status port is a real HTTP server for the health gate.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FakePool } from '../../../src/ssh';
import type { TlsContext } from '../../../src/tasks/context';
import { rollingStoreRestartStep } from '../../../src/tasks/encrypt';
import { clearEvictionsStep, markerPath, markerText, restartStoreEvictingLeaders } from '../../../src/tasks/restart/evict-leaders';
import { parseTopology } from '../../../src/topology';
import type { Instance, Topology } from '../../../src/topology/types';
import { runStats } from '../../../src/util/run-stats';
import { FakePd } from '../../support/fake-pd';
import { fakeTlsContext } from '../../support/deployed-pool';
import { tlsFlags } from '../../../src/commands/tls/switch';

jest.setTimeout(30_000);

const STARTED_S = 1_764_460_000;
let stateDir: string;
let pd: FakePd;
const statusServers: http.Server[] = [];

async function statusServer(): Promise<number> {
  const s = http.createServer((_q, r) => r.end('{}'));
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  statusServers.push(s);
  return (s.address() as AddressInfo).port;
}

/** `n` TiKV on 127.0.0.1 (ports 30161…), each with a live status port; store i+1 leads 3 regions; PD moves `movesPerPoll` leaders per poll. */
async function cluster(n = 3, movesPerPoll = 100): Promise<Topology> {
  const tikvs = [];
  for (let i = 1; i <= n; i++) tikvs.push(`  - host: 127.0.0.1\n    port: ${30160 + i}\n    status_port: ${await statusServer()}`);
  const t = parseTopology(`global:\n  user: tidb\npd_servers:\n  - host: 127.0.0.2\ntikv_servers:\n${tikvs.join('\n')}\n`, 'c.yaml');
  pd = await new FakePd(tikvs.map((_, i) => ({ id: String(i + 1), address: `127.0.0.1:${30161 + i}`, stateName: 'Up', leaders: 3 })), { movesPerPoll }).start();
  return t;
}

const stores = (t: Topology) => t.instances.filter((i) => i.role === 'tikv');
const storeId = (inst: Instance) => String(inst.ports.port - 30160);

/** The stores' host: units started at STARTED_S, configs changed since (a restart owed); `failRestart` units fail to restart. */
function hosts(t: Topology, failRestart = new Set<string>(), failed = new Set<string>()): FakePool {
  const pool = new FakePool();
  const h = pool.host('127.0.0.1');
  for (const inst of stores(t)) h.addDir(inst.deployDir, { owner: 'tidb', mode: 0o755 });
  const state = (unit: string) => (failed.has(String(Number(/tikv-(\d+)/.exec(unit)![1]) - 30160)) ? 'ActiveState=failed\nSubState=failed' : 'ActiveState=active\nSubState=running');
  h.onExec(/^systemctl show .* '?([\w.-]+\.service)'?$/, (_c, x) => `Id=${x.match![1]}\nLoadState=loaded\n${state(x.match![1])}\nNRestarts=0\nActiveEnterTimestamp=@${STARTED_S}\nMainPID=7\n`)
    .onExec(/^stat -c %Y /, () => `${STARTED_S + 100}\n`)
    .onExec(/systemctl restart '?tikv-(\d+)\.service'?$/, (_c, x) => {
      const id = String(Number(x.match![1]) - 30160);
      pd.events.push(`restart ${id} leaders=${pd.store(id).leaders}`);
      if (failRestart.has(id)) return { code: 1, stderr: `Job for tikv-${x.match![1]}.service failed` };
      return '';
    });
  return pool;
}

const context = (t: Topology, pool: FakePool, flags: Partial<TlsContext['flags']> = {}): TlsContext =>
  fakeTlsContext({ want: 'off', topology: t, pool, stateDir, cluster: 'c', runId: 'encrypt-1764460000000', pd: pd.client(), flags: { keyType: 'rsa', ...flags } });

/** Decide a step and run its actions as the runner does with concurrency 1; rejections are returned, not thrown. */
async function runStep(ctx: TlsContext, step = rollingStoreRestartStep('restart')): Promise<Array<string | Error>> {
  const d = await step.decide(ctx);
  const out: Array<string | Error> = [];
  for (const a of d.actions) out.push(await a.run().then((r) => r ?? '', (e: Error) => e));
  return out;
}

beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-evict-'))));
afterEach(async () => {
  await pd?.close();
  for (const s of statusServers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
  fs.rmSync(stateDir, { recursive: true, force: true });
});

describe('rolling store restarts evict leaders first', () => {
  it('one store at a time: evicted to 0 leaders, restarted, Up, scheduler and marker removed before the next', async () => {
    const t = await cluster(3, 2); // leaders leave over several polls: the restart waits for the last
    const pool = hosts(t);
    const results = await runStep(context(t, pool));
    expect(results).toEqual([1, 2, 3].map(() => expect.stringMatching(/leader\(s\) moved off store \d in .*; restarted, Up; evict-leader-scheduler removed/)));
    expect(pd.events).toEqual(['add 1', 'restart 1 leaders=0', 'remove 1', 'add 2', 'restart 2 leaders=0', 'remove 2', 'add 3', 'restart 3 leaders=0', 'remove 3']);
    expect(pd.evicting.size).toBe(0);
    for (const inst of stores(t)) expect(pool.host('127.0.0.1').entry(markerPath(inst))).toBeUndefined();
  });

  it('the marker is on the store host, root-owned, before PD is asked to evict', async () => {
    const t = await cluster();
    const pool = hosts(t);
    const h = pool.host('127.0.0.1');
    const inst = stores(t)[0];
    const seen: string[] = [];
    const look = (when: string) => {
      const m = h.entry(markerPath(inst));
      seen.push(`${when}: ${m?.kind} ${m?.owner} ${(m?.mode ?? 0).toString(8)} ${h.readText(markerPath(inst))?.match(/store_id=\d+/)?.[0]}`);
    };
    pd.onAdd = () => look('add');
    await restartStoreEvictingLeaders(context(t, pool), inst, async () => look('restart'));
    expect(seen).toEqual(['add: file root 600 store_id=1', 'restart: file root 600 store_id=1']);
    expect(h.entry(markerPath(inst))).toBeUndefined();
  });

  it('stores restarted from parallel actions (the rotate fallback) still go one at a time', async () => {
    const t = await cluster();
    const pool = hosts(t);
    const ctx = context(t, pool);
    let running = 0;
    let most = 0;
    await Promise.all(
      stores(t).map((inst) =>
        restartStoreEvictingLeaders(ctx, inst, async () => {
          most = Math.max(most, ++running);
          pd.events.push(`restart ${storeId(inst)}`);
          await new Promise((r) => setTimeout(r, 50));
          running--;
        }),
      ),
    );
    expect(most).toBe(1);
    // add/restart/remove of one store never interleave with another's.
    const per = pd.events.map((e) => e.split(' ')[1]);
    expect(per).toEqual(['1', '1', '1', '2', '2', '2', '3', '3', '3']);
  });

  it('removes the scheduler and its marker when the restart fails, and keeps the failure', async () => {
    const t = await cluster();
    const pool = hosts(t, new Set(['2']));
    const results = await runStep(context(t, pool));
    expect(results[1]).toBeInstanceOf(Error);
    expect((results[1] as Error).message).toMatch(/tikv-30162\.service.*exited 1/);
    expect(pd.events.slice(3, 6)).toEqual(['add 2', 'restart 2 leaders=0', 'remove 2']);
    expect(pd.evicting.size).toBe(0);
    expect(pool.host('127.0.0.1').entry(markerPath(stores(t)[1]))).toBeUndefined();
  });

  it('says so when leaders do not leave in time, restarts anyway (as TiUP) and still removes the scheduler', async () => {
    const t = await cluster();
    pd.stuck.add('1');
    const ctx = context(t, hosts(t), { transferTimeoutSec: 1 });
    const results = await runStep(ctx);
    expect(results[0]).toMatch(/leader eviction timed out with 3 leader\(s\) left; restarted, Up; evict-leader-scheduler removed/);
    expect(ctx.notes).toEqual([expect.stringMatching(/^tikv-30161\.service on 127\.0\.0\.1: store 1 still led 3 of 3 region\(s\) after 1\.\d s under evict-leader-scheduler \(--transfer-timeout 1\); restarted anyway/)]);
    expect(pd.events.slice(0, 3)).toEqual(['add 1', 'restart 1 leaders=3', 'remove 1']);
    const rec = runStats.report('test').evictions!.filter((e) => e.storeId === '1').pop();
    expect(rec).toMatchObject({ timedOut: true, leadersBefore: 3, leadersAtRestart: 3, addedByTiseal: true });
  });

  it("keeps an evict-leader scheduler the operator added (no marker): neither added again nor removed", async () => {
    const t = await cluster(3, 2); // store 2 still leads when tiseal gets to it
    pd.evicting.add('2');
    const results = await runStep(context(t, hosts(t)));
    expect(results[1]).toMatch(/^an evict-leader-scheduler tiseal did not add already holds store 2: kept; \d leader\(s\) moved off store 2 in [\d.]+ s; restarted, Up$/);
    expect(pd.events.filter((e) => / 2/.test(e))).toEqual(['restart 2 leaders=0']);
    expect([...pd.evicting]).toEqual(['2']);
  });

  it('evicts nothing from a store whose unit is not running (its peers elect new leaders anyway)', async () => {
    const t = await cluster();
    const ctx = context(t, hosts(t, new Set(), new Set(['2'])));
    expect(await restartStoreEvictingLeaders(ctx, stores(t)[1], async () => void pd.events.push('restart 2'))).toBe('restarted without evicting leaders (tikv-30162.service is failed)');
    expect(pd.events).toEqual(['restart 2']);
  });

  it('--transfer-timeout is whole seconds, 1 to 86400', () => {
    expect(tlsFlags({ transferTimeout: '90' }).transferTimeoutSec).toBe(90);
    expect(tlsFlags({}).transferTimeoutSec).toBeUndefined();
    expect(() => tlsFlags({ transferTimeout: '0' })).toThrow(/invalid value for --transfer-timeout: '0'/);
  });

  it('evicts nothing on a single TiKV (no store to take its leaders), as TiUP', async () => {
    const t = await cluster(1);
    const results = await runStep(context(t, hosts(t)));
    expect(results).toEqual([expect.stringMatching(/restarted without evicting leaders \(the only TiKV/)]);
    expect(pd.requests.filter((r) => !r.startsWith('GET /pd/api/v1/stores'))).toEqual([]);
  });
});

describe('a later run removes what a killed one left', () => {
  it("removes tiseal's scheduler named by a root-owned marker, never the operator's nor one a forged marker names", async () => {
    const t = await cluster();
    const [s1, s2, s3] = stores(t);
    const pool = hosts(t);
    const h = pool.host('127.0.0.1');
    pd.evicting.add('1'); // the operator's
    pd.evicting.add('2'); // a killed tiseal run's
    h.addFile(markerPath(s2), markerText('2', 'encrypt-1764450000000', s2), { owner: 'root', mode: 0o600 });
    h.addFile(markerPath(s3), markerText('1', 'forged', s3), { owner: 'tidb', mode: 0o600 }); // the deploy user's, not tiseal's
    const ctx = context(t, pool);
    const d = await clearEvictionsStep.decide(ctx);
    expect(d.actions.map((a) => a.title)).toEqual([`remove evict-leader-scheduler-2 (added by tiseal run encrypt-1764450000000 before restarting ${s2.unit} on 127.0.0.1), then ${markerPath(s2)}`]);
    expect(await d.actions[0].run()).toBe('removed');
    expect([...pd.evicting]).toEqual(['1']);
    expect(h.entry(markerPath(s2))).toBeUndefined();
    expect(h.entry(markerPath(s1))).toBeUndefined();
    expect((await clearEvictionsStep.decide(ctx)).actions).toHaveLength(0);
  });

  it('drops a marker whose scheduler PD no longer has (killed between marker and add, or after the remove)', async () => {
    const t = await cluster();
    const s2 = stores(t)[1];
    const pool = hosts(t);
    pool.host('127.0.0.1').addFile(markerPath(s2), markerText('2', 'encrypt-1', s2), { owner: 'root', mode: 0o600 });
    const d = await clearEvictionsStep.decide(context(t, pool));
    expect(await d.actions[0].run()).toBe('PD no longer had it; marker removed');
    expect(pool.host('127.0.0.1').entry(markerPath(s2))).toBeUndefined();
    expect((await clearEvictionsStep.decide(context(t, pool))).reason).toMatch(/no tiseal-evict-leader marker/);
  });
});
