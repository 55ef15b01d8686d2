/**
 * PD's join as v6.5.0 … v8.5.0 do it (tikv/pd server/join/join.go, PrepareJoinCluster):
 *
 *   for _, m := range listResp.Members {
 *       if len(m.Name) == 0 { … return errors.Errorf("there is a member %d that has not joined successfully", m.ID) }
 *       if m.Name == cfg.Name { existed = true }
 *   }
 *   if existed { return errors.New("missing data or join a duplicated pd") }
 *
 * Neither member is ever removed (only newer PD, tikv/pd#9199, reuses a half-joined member), and
 * main.go ends the process with log.Fatal("join meet error"). Also `--config-check`
 * (configutil.PrintConfigCheckMsg) and `--force-new-cluster` (handed to the embedded etcd).
 */
import * as fs from 'fs';
import * as path from 'path';
import { parseJsonLossless } from '../../lab/emulators/common/json';
import { buildEmulators, curl, loopbackNet, Proc, startEmulator, startPd, stopAll, tmpDir, waitFor } from './helpers';

jest.setTimeout(120000);

const IP = loopbackNet(__filename);
let build: string;
let base: string;

/** Membership flags (`--initial-cluster`, `--join`, `--force-new-cluster`) as given: no default. */
const pdWith = (n: number, cluster: string[], o: { version?: string; dataDir?: string } = {}): Proc =>
  startPd({ build, base, ip: IP }, n, { cluster, ...o });

type Member = { ID: string; name?: string; peerURLs?: string[] };
/** etcd's own member list through PD's client port (served locally: works without a quorum). */
function etcdMembers(n: number): Member[] {
  const r = curl(`http://${IP(n)}:2379/v3/cluster/member/list`, { method: 'POST', data: '{}' });
  if (r.http !== 200) throw new Error(`member list: ${r.http} ${r.body}`);
  return ((parseJsonLossless(r.body) as { members?: Member[] }).members ?? []).map((m) => ({ ...m, ID: String(m.ID) }));
}

function leaderOf(n: number): string | undefined {
  const r = curl(`http://${IP(n)}:2379/pd/api/v1/members`);
  if (r.http !== 200) return undefined;
  return ((parseJsonLossless(r.body) as { leader?: { name: string } }).leader ?? undefined)?.name;
}

beforeAll(() => {
  build = buildEmulators();
  base = tmpDir('pdjoin');
  for (const n of [1, 2, 3, 4]) {
    fs.mkdirSync(path.join(base, `pd-${n}`, 'conf'), { recursive: true });
    fs.writeFileSync(path.join(base, `pd-${n}`, 'conf/pd.toml'), '[replication]\nmax-replicas = 3\n');
  }
});

afterAll(async () => {
  await stopAll();
  if (!process.env.KEEP) fs.rmSync(base, { recursive: true, force: true });
});

test('--config-check prints PD\'s message on stdout; a bad config exits 0 from v7.1 (cobra), 1 on v6.5', async () => {
  const dir = path.join(base, 'check');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'good.toml'), '[replication]\nmax-replicas = 3\n');
  fs.writeFileSync(path.join(dir, 'unknown.toml'), 'no-such-key = 1\n[replication]\nmax-replicas = 3\n');
  fs.writeFileSync(path.join(dir, 'bad.toml'), 'join = "http://a:2379"\ninitial-cluster = "a=http://a:2380"\n');
  const run = async (conf: string, version?: string) => {
    const p = startEmulator(build, 'pd-server', ['--config-check', `--config=${conf}`], { cwd: dir, version });
    return { code: await p.exited, out: p.output() };
  };
  expect(await run('good.toml')).toEqual({ code: 0, out: 'config check successful\n' });
  expect(await run('unknown.toml')).toEqual({ code: 0, out: 'Config contains undefined item: no-such-key\n' });
  expect(await run('bad.toml')).toEqual({ code: 0, out: '-initial-cluster and -join can not be provided at the same time\n' });
  const old = await run('bad.toml', 'v6.5.0');
  expect(old.code).toBe(1);
  expect(old.out).toContain('-initial-cluster and -join can not be provided at the same time');
  expect(fs.existsSync(path.join(dir, 'default.pd'))).toBe(false); // nothing started
});

test('a member that never started blocks every join and is left in place; --force-new-cluster recovers the survivor', async () => {
  const pd1 = pdWith(1, [`--initial-cluster=pd-1=http://${IP(1)}:2380`]);
  await waitFor('pd-1 leader', () => leaderOf(1) === 'pd-1' || undefined, 30000);
  // A member add whose PD never starts (what a join that fails after the add leaves): 1 → 2 voters.
  const add = curl(`http://${IP(1)}:2379/v3/cluster/member/add`, { method: 'POST', data: JSON.stringify({ peerURLs: [`http://${IP(2)}:2380`] }) });
  expect(add.http).toBe(200);
  const stuck = etcdMembers(1).find((m) => !m.name)!;
  expect(stuck.peerURLs).toEqual([`http://${IP(2)}:2380`]);

  const p3 = pdWith(3, [`--join=http://${IP(1)}:2379`]);
  expect(await p3.exited).toBe(1);
  expect(p3.output()).toContain('join meet error');
  expect(p3.output()).toContain(`there is a member ${stuck.ID} that has not joined successfully`);
  // Before v8.4.0 the message has no id.
  const p3old = pdWith(3, [`--join=http://${IP(1)}:2379`], { version: 'v7.5.0' });
  expect(await p3old.exited).toBe(1);
  expect(p3old.output()).toContain('"there is a member that has not joined successfully"');
  // Not removed, and no member added for pd-3.
  expect(etcdMembers(1).map((m) => m.ID).sort()).toEqual([stuck.ID, etcdMembers(1).find((m) => m.name === 'pd-1')!.ID].sort());
  expect(fs.existsSync(path.join(base, 'pd-3/data/join'))).toBe(false);

  // Two voters, one running: no leader, and a removal cannot commit.
  await waitFor('pd-1 to lose its leader', () => !leaderOf(1) || undefined, 30000, 500);
  // PD's documented way back: restart the survivor with --force-new-cluster.
  await pd1.stop();
  pdWith(1, ['--force-new-cluster', `--initial-cluster=pd-1=http://${IP(1)}:2380`]);
  await waitFor('pd-1 leader again', () => leaderOf(1) === 'pd-1' || undefined, 30000);
  expect(etcdMembers(1).map((m) => m.name)).toEqual(['pd-1']);
});

test('same name with an empty data dir: "missing data or join a duplicated pd", the member stays', async () => {
  const joinUrl = `--join=http://${IP(1)}:2379`;
  const p2 = pdWith(2, [joinUrl]);
  await waitFor('pd-2 joined', () => etcdMembers(1).some((m) => m.name === 'pd-2') || undefined, 40000);
  await waitFor('pd-2 serving', () => curl(`http://${IP(2)}:2379/pd/api/v1/ping`).http === 200 || undefined, 20000);
  const id = etcdMembers(1).find((m) => m.name === 'pd-2')!.ID;
  await p2.stop();
  // The same PD, same peer URLs, its data lost: v6.5–v8.5 refuse (the emulator used to remove and re-add it).
  const again = pdWith(2, [joinUrl], { dataDir: path.join(base, 'pd-2', 'data-lost') });
  expect(await again.exited).toBe(1);
  expect(again.output()).toContain('missing data or join a duplicated pd');
  expect(etcdMembers(1).find((m) => m.name === 'pd-2')?.ID).toBe(id);
  // With its data (the join file) it comes back as the same member.
  pdWith(2, [joinUrl]);
  await waitFor('pd-2 back', () => curl(`http://${IP(2)}:2379/pd/api/v1/ping`).http === 200 || undefined, 20000);
  expect(etcdMembers(1).find((m) => m.name === 'pd-2')?.ID).toBe(id);
});
