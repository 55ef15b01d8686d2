import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { parseJsonLossless } from '../../lab/emulators/common/json';
import { PdClient } from '../../src/pd/client';
import { buildEmulators, curl, loopbackNet, Proc, startEmulator, startPd, stopAll, tmpDir, waitFor } from './helpers';

jest.setTimeout(120000);

const IP = loopbackNet(__filename);
let build: string;
let base: string;
const procs: Record<string, Proc> = {};

/** A PD with its advertised URLs given; membership flags (`--initial-cluster`, `--join`) as given. */
function pdWith(n: number, cluster: string[]): Proc {
  const p = startPd({ build, base, ip: IP }, n, { cluster, advertise: true });
  procs[`pd-${n}`] = p;
  return p;
}

function members(n: number): Record<string, unknown> {
  const r = curl(`http://${IP(n)}:2379/pd/api/v1/members`);
  if (r.http !== 200) throw new Error(`members: ${r.http} ${r.body}`);
  return parseJsonLossless(r.body) as Record<string, unknown>;
}

beforeAll(() => {
  build = buildEmulators();
  base = tmpDir('pdc');
  for (const n of [1, 2, 3, 4]) {
    fs.mkdirSync(path.join(base, `pd-${n}`, 'conf'), { recursive: true });
    fs.writeFileSync(path.join(base, `pd-${n}`, 'conf/pd.toml'), '[replication]\nmax-replicas = 3\nlocation-labels = ["zone", "host"]\n[unknown-section]\nfoo = 1\n');
  }
});

afterAll(async () => {
  await stopAll();
  if (!process.env.KEEP) fs.rmSync(base, { recursive: true, force: true });
  else console.log(base);
});

test('unknown flag fails like pd-server (cobra): exit 1', async () => {
  const p = startEmulator(build, 'pd-server', ['--nmae=pd'], { cwd: base });
  expect(await p.exited).toBe(1);
  expect(p.output()).toContain('Error: unknown flag: --nmae');
});

test('-V prints the version in PD format', async () => {
  const p = startEmulator(build, 'pd-server', ['-V'], { cwd: base, version: 'v7.5.2' });
  expect(await p.exited).toBe(0);
  expect(p.output()).toContain('Release Version: v7.5.2');
});

test('three PD emulators form one cluster; IDs are raw uint64 above 2^53', async () => {
  const initial = [1, 2, 3].map((n) => `pd-${n}=http://${IP(n)}:2380`).join(',');
  [1, 2, 3].forEach((n) => pdWith(n, [`--initial-cluster=${initial}`]));
  const m = await waitFor('3 members with a leader', () => {
    const j = members(1);
    return (j.members as unknown[]).length === 3 && j.leader ? j : undefined;
  }, 30000);
  const cid = (m.header as Record<string, unknown>).cluster_id;
  expect(typeof cid).toBe('bigint');
  expect(cid as bigint).toBeGreaterThan(2n ** 53n);
  const ids = (m.members as Record<string, unknown>[]).map((x) => x.member_id as bigint);
  // Every member answers for the cluster with the same cluster id.
  expect((members(3).header as Record<string, unknown>).cluster_id).toBe(cid);
  // etcdctl (gRPC through the PD client port) agrees; -w simple prints hex IDs.
  const r = spawnSync('etcdctl', ['--endpoints', `http://${IP(2)}:2379`, 'member', 'list'], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' } });
  expect(r.status).toBe(0);
  const hex = r.stdout.trim().split('\n').map((l) => BigInt('0x' + l.split(',')[0]));
  expect(hex.sort()).toEqual([...ids].sort());
  expect(r.stdout).toContain(`pd-2, http://${IP(2)}:2380, http://${IP(2)}:2379`);
  // Unknown section only warns (PD: "Config contains undefined item").
  expect(fs.readFileSync(path.join(base, 'pd-1/log/pd.log'), 'utf8')).toContain('Config contains undefined item: unknown-section');
  // replicate config comes from [replication].
  const rep = JSON.parse(curl(`http://${IP(1)}:2379/pd/api/v1/config/replicate`).body);
  expect(rep).toMatchObject({ 'max-replicas': 3, 'location-labels': 'zone,host' });
  const health = parseJsonLossless(curl(`http://${IP(3)}:2379/pd/api/v1/health`).body) as Record<string, unknown>[];
  expect(health.map((h) => h.health)).toEqual([true, true, true]);
  const st = JSON.parse(curl(`http://${IP(1)}:2379/pd/api/v1/status`).body);
  expect(Object.keys(st).sort()).toEqual(['build_ts', 'git_hash', 'start_timestamp', 'version']);
});

test('leader = etcd leader; transfer moves it', async () => {
  const m = members(1);
  const leader = (m.leader as Record<string, unknown>).name as string;
  const target = ['pd-1', 'pd-2', 'pd-3'].find((n) => n !== leader)!;
  const r = curl(`http://${IP(1)}:2379/pd/api/v1/leader/transfer/${target}`, { method: 'POST' });
  expect(r.http).toBe(200);
  expect(JSON.parse(r.body)).toBe('The transfer command is submitted.');
  await waitFor('leader moved', () => ((members(2).leader as Record<string, unknown>).name === target ? true : undefined), 15000);
  const st = spawnSync('etcdctl', ['--endpoints', `http://${IP(1)}:2379,http://${IP(2)}:2379,http://${IP(3)}:2379`, 'endpoint', 'status', '-w', 'simple'], {
    encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' },
  });
  const leaderLine = st.stdout.split('\n').find((l) => l.includes(', true, '));
  const idx = [1, 2, 3].find((n) => leaderLine?.startsWith(`http://${IP(n)}:2379`));
  expect(`pd-${idx}`).toBe(target);
});

test('delete a member by name; unknown name is 404', async () => {
  const notFound = curl(`http://${IP(1)}:2379/pd/api/v1/members/name/pd-9`, { method: 'DELETE' });
  expect(notFound.http).toBe(404);
  expect(JSON.parse(notFound.body)).toBe('not found, pd: pd-9');
  const leader = (members(1).leader as Record<string, unknown>).name as string;
  const victim = ['pd-3', 'pd-2', 'pd-1'].find((n) => n !== leader)!;
  const asker = [1, 2, 3].find((n) => `pd-${n}` !== victim)!;
  // Right after a leader change etcd's strict reconfig check answers "unhealthy cluster" (PD passes it on as 500): retry.
  const r = await waitFor('member removed', () => {
    const x = curl(`http://${IP(asker)}:2379/pd/api/v1/members/name/${victim}`, { method: 'DELETE' });
    if (x.http === 500) expect(x.body).toContain('etcdserver: unhealthy cluster');
    return x.http === 200 ? x : undefined;
  }, 15000, 500);
  expect(JSON.parse(r.body)).toBe(`removed, pd: ${victim}`);
  await procs[victim].stop();
  const names = ((members(asker).members as Record<string, unknown>[]).map((x) => x.name)).sort();
  expect(names).toEqual(['pd-1', 'pd-2', 'pd-3'].filter((n) => n !== victim));
});

test('join: a new PD joins through --join, writes the join file; join errors as PD', async () => {
  const live = [1, 2, 3].filter((n) => procs[`pd-${n}`].exitCode() === undefined);
  const joinUrls = live.map((n) => `http://${IP(n)}:2379`).join(',');
  // Joining itself is forbidden.
  const self = startEmulator(build, 'pd-server', [
    '--name=pd-self', `--client-urls=http://${IP(9)}:2379`, `--peer-urls=http://${IP(9)}:2380`, `--data-dir=${path.join(base, 'self')}`,
    `--join=http://${IP(9)}:2379`,
  ], { cwd: base });
  expect(await self.exited).toBe(1);
  expect(self.output()).toContain('join self is forbidden');

  pdWith(4, [`--join=${joinUrls}`]);
  await waitFor('pd-4 joined', () => {
    const ms = members(live[0]).members as Record<string, unknown>[];
    return ms.some((x) => x.name === 'pd-4') && ms.length === 3 ? true : undefined;
  }, 40000);
  const joinFile = fs.readFileSync(path.join(base, 'pd-4/data/join'), 'utf8');
  expect(joinFile).toContain(`pd-4=http://${IP(4)}:2380`);
  await waitFor('pd-4 serving', () => curl(`http://${IP(4)}:2379/pd/api/v1/members`).http === 200 || undefined, 20000);

  // Same name again with an empty data dir and other peer URLs: duplicated.
  const dup = startEmulator(build, 'pd-server', [
    '--name=pd-4', `--client-urls=http://${IP(8)}:2379`, `--peer-urls=http://${IP(8)}:2380`, `--data-dir=${path.join(base, 'dup')}`,
    `--join=${joinUrls}`,
  ], { cwd: base });
  expect(await dup.exited).toBe(1);
  expect(dup.output()).toContain('missing data or join a duplicated pd');

  // Restart pd-4 with its data: it uses the join file and comes back.
  await procs['pd-4'].stop();
  pdWith(4, [`--join=${joinUrls}`]);
  await waitFor('pd-4 back', () => (curl(`http://${IP(4)}:2379/pd/api/v1/health`).http === 200 ? true : undefined), 20000);
  const h = parseJsonLossless(curl(`http://${IP(4)}:2379/pd/api/v1/health`).body) as Record<string, unknown>[];
  await waitFor('all healthy', () => {
    const hh = parseJsonLossless(curl(`http://${IP(4)}:2379/pd/api/v1/health`).body) as Record<string, unknown>[];
    return hh.every((x) => x.health === true) ? true : undefined;
  });
  expect(h.length).toBe(3);
});

test("what tiseal's quorum recovery asks of etcd through PD's client port: linearizable and serializable reads, Txn, /health, and the API failpoint", async () => {
  const live = (members(4).members as Record<string, unknown>[]).map((x) => Number(String(x.name).slice(3)));
  expect(live).toHaveLength(3);
  const pd = new PdClient([`${IP(4)}:2379`], undefined, { timeoutMs: 3000 });
  const cid = (await pd.etcdGet('/pd/cluster_id'))!.value;
  expect(cid).toHaveLength(8); // typeutil.Uint64ToBytes, as PD writes it
  // Txn with etcd's compare encodings (vendored rpc.proto against the real etcd).
  const key = '/tiseal-test/k';
  expect(await pd.etcdPutIf(key, Buffer.from('1'), { key, exists: false }, undefined)).toBe(true);
  expect(await pd.etcdPutIf(key, Buffer.from('2'), { key, exists: false }, undefined)).toBe(false);
  expect(await pd.etcdPutIf(key, Buffer.from('2'), { key, exists: true }, Buffer.from('9'))).toBe(false);
  expect(await pd.etcdPutIf(key, Buffer.from('2'), { key, exists: true }, Buffer.from('1'))).toBe(true);
  expect((await pd.etcdGet(key))!.value.toString()).toBe('2');
  // Never bootstrapped by a TiKV: no /pd/<cid>/raft, as pd-recover --from-old-member checks.
  expect(await pd.etcdGet(`/pd/${cid.readBigUInt64BE(0)}/raft`)).toBeUndefined();
  // etcd's own /health on PD's client port.
  const health = curl(`http://${IP(4)}:2379/health`);
  expect(health.http).toBe(200);
  expect(health.body).toMatch(/"health":\s*"true"/);
  // The failpoint: PD's API answers 500 as on an etcd timeout; etcd and /health carry on.
  const fp = path.join(base, 'pd-4', 'failpoint');
  fs.mkdirSync(fp, { recursive: true });
  fs.writeFileSync(path.join(fp, 'pd-api-unavailable-until'), String(Date.now() + 60_000));
  const failing = curl(`http://${IP(4)}:2379/pd/api/v1/members`);
  expect(failing.http).toBe(500);
  expect(failing.body).toContain('[PD:etcd:ErrEtcdKVGet]');
  expect((await pd.etcdGet('/pd/cluster_id'))!.value).toEqual(cid);
  expect(curl(`http://${IP(4)}:2379/health`).http).toBe(200);
  fs.writeFileSync(path.join(fp, 'pd-api-unavailable-until'), String(Date.now() - 1));
  expect(curl(`http://${IP(4)}:2379/pd/api/v1/members`).http).toBe(200);
  // Quorum lost: a linearizable read gets no answer, the member's local store still does.
  await Promise.all(live.filter((n) => n !== 4).map((n) => procs[`pd-${n}`].stop()));
  await expect(pd.etcdGet('/pd/cluster_id', { timeoutMs: 2000 })).rejects.toThrow();
  expect((await pd.etcdGet('/pd/cluster_id', { serializable: true }))!.value).toEqual(cid);
});
