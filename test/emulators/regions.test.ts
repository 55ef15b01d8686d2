/**
 * Regions in the TiKV emulator and the schedulers of the PD emulator, driven from outside: a TLS
 * PD, three TLS TiKV stores with a short raft tick (TiKV's own `raftstore` keys), a TiDB and the
 * real `mariadb` client. Upstream behaviour each test checks: tikv components/raftstore (election
 * timeout, majority, check_quorum), tikv/pd pkg/schedule/schedulers/evict_leader.go and
 * server/api/scheduler.go (API shapes), server/api/store.go (leader_count / region_count).
 */
import { spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import * as tls from 'tls';
import { parseJsonLossless } from '../../lab/emulators/common/json';
import { buildEmulators, curl, loopbackNet, Pki, Proc, startEmulator, startPd, startTikv, stopAll, tmpDir, waitFor, writeFile } from './helpers';

jest.setTimeout(180000);

const IP = loopbackNet(__filename);
const STORES = [11, 12, 13];
// 100 ms × 10 ticks: a 1 s election timeout, randomized in [1 s, 2 s) as raft-rs does.
const RAFT = '[raftstore]\nraft-base-tick-interval = "100ms"\nraft-store-max-leader-lease = "900ms"\n';
let build: string;
let base: string;
let pki: Pki;
let other: Pki;
const c: Record<string, { cert: string; key: string }> = {};
const kv: Record<number, Proc> = {};
const PD = (): string => `${IP(1)}:2379`;
const mtls = () => ({ ca: pki.ca, cert: c.client.cert, key: c.client.key });

type Json = Record<string, unknown>;
const pdGet = (p: string): unknown => {
  const r = curl(`https://${PD()}${p}`, mtls());
  if (r.http !== 200) throw new Error(`GET ${p}: ${r.http} ${r.body}`);
  return parseJsonLossless(r.body);
};
const pdCall = (method: string, p: string, data?: unknown): { http: number; body: unknown } => {
  const r = curl(`https://${PD()}${p}`, { ...mtls(), method, data: data === undefined ? undefined : JSON.stringify(data) });
  return { http: r.http, body: r.body.trim() === '' ? '' : parseJsonLossless(r.body) };
};
const regions = (): Json[] => (pdGet('/pd/api/v1/regions') as Json).regions as Json[];
const leaderOf = (r: Json): number => Number((r.leader as Json).store_id ?? 0);
const storeStatus = (id: number): Json => (pdGet(`/pd/api/v1/store/${id}`) as Json).status as Json;
const storeIds = (): Record<number, number> => {
  const out: Record<number, number> = {};
  for (const s of (pdGet('/pd/api/v1/stores') as Json).stores as Json[]) {
    const st = s.store as Json;
    out[Number(String(st.address).split('.')[3].split(':')[0])] = Number(st.id);
  }
  return out;
};

/** One key per region (regions split sha1(key) by its first byte: 00-3F, 40-7F, 80-BF, C0-FF). */
const KEY_PER_REGION = [0, 1, 2, 3].map((q) => {
  for (let i = 0; ; i++) if (crypto.createHash('sha1').update(`r${i}`).digest()[0] >> 6 === q) return `r${i}`;
});

function tikvAt(n: number): Proc {
  const toml = `[security]\nca-path = "${pki.ca}"\ncert-path = "${c[`tikv${n}`].cert}"\nkey-path = "${c[`tikv${n}`].key}"\n${RAFT}`;
  return (kv[n] = startTikv({ build, base, ip: IP }, n, { pd: PD(), toml }));
}

function mariadb(sqlText: string): { code: number; out: string; err: string } {
  const r = spawnSync('mariadb', ['-h', IP(20), '-P', '4000', '-u', 'root', '--connect-timeout=5', '--skip-ssl', '-N', '-B', '-e', sqlText], { encoding: 'utf8', timeout: 60000 });
  return { code: r.status ?? -1, out: r.stdout ?? '', err: r.stderr ?? '' };
}

/** Every region has a leader PD knows of, and the statement path works. */
const healthy = (): Promise<true> =>
  waitFor('every region led', () => regions().length === 4 && regions().every((r) => leaderOf(r) > 0) || undefined, 30000);

/** One raw line to a store's server port over TLS with the given identity; undefined when the store does not answer. */
function rawRpc(n: number, id: { cert: string; key: string }, ca: string, line: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: IP(n), port: 20160, ca: fs.readFileSync(ca), cert: fs.readFileSync(id.cert), key: fs.readFileSync(id.key), ALPNProtocols: ['h2'] });
    let buf = '';
    const t = setTimeout(() => { s.destroy(); resolve(undefined); }, 10000);
    s.once('secureConnect', () => s.write(line + '\n'));
    s.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) { clearTimeout(t); s.destroy(); resolve(buf.split('\n')[0]); }
    });
    s.on('error', () => { clearTimeout(t); resolve(undefined); });
  });
}

beforeAll(async () => {
  build = buildEmulators();
  base = tmpDir('regions');
  pki = new Pki(path.join(base, 'cluster-ca'));
  other = new Pki(path.join(base, 'other-ca'));
  for (const [name, n] of [['pd', 1], ['tikv11', 11], ['tikv12', 12], ['tikv13', 13], ['tidb', 20], ['client', 0]] as const) c[name] = pki.issue(name, name, n ? [IP(n)] : []);
  c.stranger = other.issue('stranger', 'tikv', [IP(14)]);
  startPd({ build, base, ip: IP }, 1, { scheme: 'https', dir: 'pd', toml: `[security]\ncacert-path = "${pki.ca}"\ncert-path = "${c.pd.cert}"\nkey-path = "${c.pd.key}"\n` });
  await waitFor('PD up', () => curl(`https://${PD()}/pd/api/v1/members`, mtls()).http === 200 || undefined, 30000);
  for (const n of STORES) tikvAt(n);
  await healthy();
  const tdir = path.join(base, 'tidb');
  writeFile(path.join(tdir, 'conf/tidb.toml'), `[security]\ncluster-ssl-ca = "${pki.ca}"\ncluster-ssl-cert = "${c.tidb.cert}"\ncluster-ssl-key = "${c.tidb.key}"\n`);
  startEmulator(build, 'tidb-server', ['-P', '4000', '--status=10080', `--host=${IP(20)}`, `--status-host=${IP(20)}`, '--store=tikv', `--path=${PD()}`,
    '--config=conf/tidb.toml', '--log-file=log/tidb.log'], { cwd: tdir });
  await waitFor('TiDB answers', () => mariadb('SELECT 1').out === '1\n' || undefined, 30000);
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(base, { recursive: true, force: true });
});

// tikv/pd server/api/region.go (RegionInfo), store.go (StoreStatus, omitempty counts).
test('4 regions × 3 replicas, leaders spread and counted per store', async () => {
  const rs = regions();
  expect(rs.map((r) => [r.start_key, r.end_key])).toEqual([['', '40'], ['40', '80'], ['80', 'C0'], ['C0', '']]);
  const ids = storeIds();
  for (const r of rs) expect(((r.peers as Json[]).map((p) => Number(p.store_id))).sort()).toEqual(STORES.map((n) => ids[n]).sort());
  // balance-leader spreads the 4 leaders: 2/1/1 in some order.
  await waitFor('leaders spread', () => STORES.every((n) => Number(storeStatus(ids[n]).leader_count ?? 0) >= 1) || undefined, 20000);
  const counts = STORES.map((n) => storeStatus(ids[n]));
  expect(counts.map((s) => s.region_count)).toEqual([4, 4, 4]);
  expect(counts.reduce((a, s) => a + Number(s.leader_count ?? 0), 0)).toBe(4);
  const listed = ((pdGet('/pd/api/v1/stores') as Json).stores as Json[]).map((s) => (s.status as Json).region_count);
  expect(listed).toEqual([4, 4, 4]);
});

test('a write reaches every replica on disk', () => {
  expect(mariadb("REPLACE INTO test.kv (k, v) VALUES ('rep', 'everywhere'); SELECT v FROM test.kv WHERE k = 'rep'")).toMatchObject({ code: 0, out: 'everywhere\n' });
  const onDisk = (n: number): boolean => fs.readdirSync(path.join(base, `tikv-${n}/data/emulator-raft`)).some((f) => fs.readFileSync(path.join(base, `tikv-${n}/data/emulator-raft`, f), 'utf8').includes('"rep"'));
  expect(STORES.map(onDisk)).toEqual([true, true, true]);
});

// components/raftstore/src/store/config.rs: election timeout = raft-base-tick-interval × raft-election-timeout-ticks.
test('a stopped leader is replaced after the election timeout from the config; SQL answers again', async () => {
  const ids = storeIds();
  const victim = STORES.find((n) => regions().some((r) => leaderOf(r) === ids[n]))!;
  const led = regions().filter((r) => leaderOf(r) === ids[victim]).map((r) => Number(r.id));
  const logSize = Object.fromEntries(STORES.map((n) => [n, fs.readFileSync(path.join(base, `tikv-${n}/log/tikv.log`), 'utf8').length]));
  const t0 = Date.now();
  await kv[victim].stop();
  const t1 = Date.now();
  await waitFor('new leaders', () => regions().filter((r) => led.includes(Number(r.id))).every((r) => leaderOf(r) > 0 && leaderOf(r) !== ids[victim]) || undefined, 30000, 100);
  // When the first survivor campaigned for a region the victim led, by the survivor's own log (not
  // when a poll of PD saw it: that adds the machine's load). Followers last heard the leader up to
  // one heartbeat (2 ticks) before it stopped, and time out in [1 s, 2 s) with this config; the
  // default config (1 s ticks) would take 10 s at least, which the upper bound (slack for a loaded
  // machine included) stays well below.
  const campaigns = STORES.filter((n) => n !== victim).flatMap((n) =>
    [...fs.readFileSync(path.join(base, `tikv-${n}/log/tikv.log`), 'utf8').slice(logSize[n]).matchAll(/^\[(\d{4})\/(\d\d)\/(\d\d) ([\d:.]+) ([+-]\d\d:\d\d)\] \[INFO\] \[tikv-emulator\] \["campaign"\] \[region=(\d+)\].*\[transfer=false\]$/gm)]
      .filter((m) => led.includes(Number(m[6])))
      .map((m) => Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}${m[5]}`)));
  expect(campaigns.length).toBeGreaterThan(0);
  const firstCampaign = Math.min(...campaigns);
  expect(firstCampaign - t0).toBeGreaterThanOrEqual(1000 - 200);
  expect(firstCampaign - t1).toBeLessThan(2000 + 4000);
  expect(mariadb("REPLACE INTO test.kv (k, v) VALUES ('after', 'election'); SELECT v FROM test.kv WHERE k = 'rep'")).toMatchObject({ code: 0, out: 'everywhere\n' });
  // With two of three stores a write still commits; TiKV refuses it without a majority.
  const survivor = STORES.filter((n) => n !== victim);
  const put = (n: number, region: unknown): Promise<string | undefined> =>
    rawRpc(n, c.client, pki.ca, `kv_put ${ids[n]} ${region} ${Buffer.from('m').toString('hex')} ${Buffer.from('v').toString('hex')} ${BigInt(Date.now()) << 18n}`);
  // Leaders still move (balance-leader): follow NotLeader like TiDB does.
  const region0 = regions()[0];
  let to = survivor.find((n) => ids[n] === leaderOf(region0)) ?? survivor[0];
  let reply: string | undefined;
  for (let i = 0; i < 40; i++) {
    reply = await put(to, region0.id);
    const hint = /NotLeader leader=(\d+)/.exec(reply ?? '');
    if (!hint) break;
    // A hint at the stopped store: its election is still to come; ask the other survivor meanwhile.
    to = survivor.find((n) => ids[n] === Number(hint[1])) ?? survivor.find((n) => n !== to)!;
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(reply).toMatch(/^ok [01]$/);
  const [last, second] = survivor;
  await kv[second].stop();
  // The last store still leads some regions (until check_quorum steps it down), but commits nothing.
  const answers = await Promise.all(regions().map((r) => put(last, r.id)));
  expect(answers.filter((a) => /^ok/.test(a ?? ''))).toEqual([]);
  expect(answers).toContain('error: proposal not committed: 1 of 3 peers (majority 2)');
  // A restarted store comes back as a follower: it does not campaign on its own while a leader lives.
  tikvAt(second);
  // PD's leader entries can be stale (a leader that stepped down reports nothing): a committed write in every region proves live leaders.
  await waitFor('a write commits in every region', () => mariadb(KEY_PER_REGION.map((k) => `REPLACE INTO test.kv (k, v) VALUES ('${k}', 'w')`).join('; ')).code === 0 || undefined, 60000);
  const since = fs.readFileSync(path.join(base, `tikv-${victim}/log/tikv.log`), 'utf8').length;
  tikvAt(victim);
  await healthy();
  await waitFor('SQL answers', () => mariadb("SELECT v FROM test.kv WHERE k = 'after'").out === 'election\n' || undefined, 30000);
  await new Promise((r) => setTimeout(r, 2500));
  const log = fs.readFileSync(path.join(base, `tikv-${victim}/log/tikv.log`), 'utf8').slice(since);
  expect(log.match(/"campaign".*?\[transfer=false\]/g) ?? []).toEqual([]);
});

// server/api/scheduler.go + evict_leader.go (one scheduler holding several stores) at v8.5.
test('scheduler API: add, apply to a second store, list, delete per store', () => {
  const ids = storeIds();
  const [a, b] = [ids[11], ids[12]];
  expect(pdCall('POST', '/pd/api/v1/schedulers', { name: 'evict-leader-scheduler' })).toEqual({ http: 400, body: 'missing store id' });
  expect(pdCall('POST', '/pd/api/v1/schedulers', { name: 'evict-leader-scheduler', store_id: a })).toEqual({ http: 200, body: 'The scheduler is created.' });
  expect(pdCall('POST', '/pd/api/v1/schedulers', { name: 'evict-leader-scheduler', store_id: b })).toEqual({ http: 200, body: 'The scheduler has been applied to the store.' });
  const names = pdGet('/pd/api/v1/schedulers') as string[];
  expect(names.filter((n) => n.startsWith('evict-leader'))).toEqual(['evict-leader-scheduler']);
  expect(names).toEqual(expect.arrayContaining(['balance-leader-scheduler', 'balance-region-scheduler']));
  expect(Object.keys((pdGet('/pd/api/v1/scheduler-config/evict-leader-scheduler/list') as Json)['store-id-ranges'] as Json).sort()).toEqual([String(a), String(b)].sort());
  expect(pdCall('DELETE', `/pd/api/v1/schedulers/evict-leader-scheduler-${a}`)).toEqual({ http: 200, body: null });
  expect(pdCall('DELETE', `/pd/api/v1/schedulers/evict-leader-scheduler-${a}`)).toEqual({ http: 404, body: '[PD:core:ErrScheduleConfigNotExist]the config does not exist' });
  expect(pdCall('DELETE', `/pd/api/v1/schedulers/evict-leader-scheduler-${b}`)).toEqual({ http: 200, body: 'The last store has been deleted' });
  expect(pdGet('/pd/api/v1/schedulers') as string[]).not.toContain('evict-leader-scheduler');
  expect(pdCall('DELETE', `/pd/api/v1/schedulers/evict-leader-scheduler-${b}`)).toEqual({ http: 404, body: '[PD:scheduler:ErrSchedulerNotFound]scheduler not found' });
  expect(curl(`https://${PD()}/pd/api/v1/scheduler-config/evict-leader-scheduler/list`, mtls()).http).toBe(404);
});

// evict_leader.go: leaders move off the store by transfer (no election, no failed statement), none come back while it is evicted.
test('evict-leader moves every leader off a store and keeps them off; statements keep answering', async () => {
  const ids = storeIds();
  await waitFor('store 13 leads', () => Number(storeStatus(ids[13]).leader_count ?? 0) > 0 || undefined, 20000);
  let stop = false;
  const failures: string[] = [];
  let statements = 0;
  let prober: Promise<void> | undefined;
  try {
    prober = (async () => {
      while (!stop) {
        const r = mariadb(`REPLACE INTO test.kv (k, v) VALUES ('ev-${statements % 8}', 'x'); SELECT v FROM test.kv WHERE k = 'ev-${statements % 8}'`);
        statements++;
        if (r.code !== 0 || r.out !== 'x\n') failures.push(r.err || r.out);
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
    const t0 = Date.now();
    expect(pdCall('POST', '/pd/api/v1/schedulers', { name: 'evict-leader-scheduler', store_id: ids[13] }).http).toBe(200);
    await waitFor('leader_count 0', () => storeStatus(ids[13]).leader_count === undefined || undefined, 30000, 100);
    // One scheduling round per store heartbeat (1 s): not faster than PD (how much slower is the
    // machine's load: the wait above bounds it).
    expect(Date.now() - t0).toBeGreaterThan(300);
    // None comes back while the store is evicted: every look over 3 s finds it leading nothing.
    const seen: unknown[] = [];
    for (const end = Date.now() + 3000; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) seen.push(storeStatus(ids[13]).leader_count);
    expect(seen.filter((x) => x !== undefined)).toEqual([]);
    expect(storeStatus(ids[13]).region_count).toBe(4);
  } finally {
    stop = true;
    await prober;
  }
  expect(statements).toBeGreaterThanOrEqual(3);
  expect(failures).toEqual([]);
  expect(pdCall('DELETE', `/pd/api/v1/schedulers/evict-leader-scheduler-${ids[13]}`).body).toBe('The last store has been deleted');
  await waitFor('leaders back on 13 (balance-leader)', () => Number(storeStatus(ids[13]).leader_count ?? 0) > 0 || undefined, 20000);
});

// The store's gRPC port verifies the caller's chain (a peer needs a certificate of the cluster CA).
test('TLS between stores: a store certificate from another CA is no peer', async () => {
  const ids = storeIds();
  const r = regions()[0];
  const follower = STORES.find((n) => ids[n] !== leaderOf(r) && (r.peers as Json[]).some((p) => Number(p.store_id) === ids[n]))!;
  const vote = (from: number): string => `raft ${JSON.stringify({ t: 'vote', region: Number(r.id), term: 1000000, from, index: 1 << 30, lastTerm: 999999, transfer: true })}`;
  const stranger = await rawRpc(follower, c.stranger, pki.ca, vote(ids[follower] + 100));
  expect(stranger).toBeUndefined();
  // The same vote from a cluster-CA certificate is answered (and granted: the message itself is valid).
  const member = await rawRpc(follower, c.tikv11, pki.ca, vote(ids[11] === ids[follower] ? ids[12] : ids[11]));
  expect(member).toMatch(/"granted":true/);
  await healthy();
});
