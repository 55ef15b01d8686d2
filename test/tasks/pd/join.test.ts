/**
 * A failed PD join, recovered (issue #13 item 2). PD v6.5 … v8.5 refuse to join while a member has
 * no name or has theirs, and never remove either (server/join/join.go); a `<data-dir>/join` file
 * makes them resume a half-join. The fake PD below behaves that way; the hosts are FakeExecutors.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { EtcdMember, PdClient } from '../../../src/pd/client';
import { renderRunScript } from '../../../src/render';
import { FakeExecutor, FakePool } from '../../../src/ssh';
import type { TlsContext } from '../../../src/tasks/context';
import {
  configCheckProblem, listeningPorts, parsePdDataFacts, pdDataFactsInner, planJoin, type PdDataFacts,
} from '../../../src/tasks/pd/join';
import { quorumTimings, withForceNewCluster } from '../../../src/tasks/pd/quorum';
import { scaleOutStep } from '../../../src/tasks/pd/scale-out';
import { parseTopology, pdInstances } from '../../../src/topology';
import { fakeTlsContext } from '../../support/tls-context';

jest.setTimeout(60_000);

const TOPO = parseTopology(
  ['global:', '  user: tidb', '  deploy_dir: /tidb-deploy', '  data_dir: /tidb-data', 'pd_servers:', '  - host: 10.0.0.1', '  - host: 10.0.0.2', '  - host: 10.0.0.3', 'tikv_servers:', '  - host: 10.0.0.1'].join('\n'),
  'three.yaml',
);
const [P1, P2, P3] = pdInstances(TOPO);
const member = (id: string, name: string, host: string): EtcdMember => ({ id, name, peerUrls: [`https://${host}:2380`], clientUrls: name ? [`https://${host}:2379`] : [] });
const KEEP = member('11', P1.name!, P1.host);
const u64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(n);
  return b;
};
const facts = (o: Partial<PdDataFacts> = {}): PdDataFacts => ({ symlink: false, entries: [], memberData: false, wal: false, listening: new Set(), ...o });

describe('planJoin: what must happen before a PD joins', () => {
  const pds = pdInstances(TOPO);
  it('a member added for this PD that never started (no name), empty data dir: removed by ID', () => {
    const stuck = member('22', '', P2.host);
    const plan = planJoin(P2, P1, pds, [KEEP, member('33', P3.name!, P3.host), stuck], true, facts());
    expect(plan).toMatchObject({ kind: 'start', remove: [{ member: { id: '22' } }] });
    expect(plan).not.toHaveProperty('moveAside');
  });
  it('the same member with its join file (a half-join): kept, nothing removed or moved', () => {
    const stuck = member('22', '', P2.host);
    const join = `${P1.name}=https://10.0.0.1:2380,${P2.name}=https://10.0.0.2:2380`;
    const plan = planJoin(P2, P1, pds, [KEEP, member('33', P3.name!, P3.host), stuck], true, facts({ entries: ['join'], join }));
    expect(plan).toMatchObject({ kind: 'start', remove: [] });
    expect(plan.kind === 'start' && plan.resume).toMatch(/join records this member/);
    expect(plan).not.toHaveProperty('moveAside');
  });
  it('a join file of a member that is gone: moved aside, not reused', () => {
    const join = `${P1.name}=https://10.0.0.1:2380,${P2.name}=https://10.0.0.2:2380`;
    const plan = planJoin(P2, P1, pds, [KEEP], true, facts({ entries: ['join', 'member'], join, memberData: true }));
    expect(plan).toMatchObject({ kind: 'start', remove: [], moveAside: expect.stringMatching(/join file of a member that is gone/) });
  });
  it('a named member with its etcd data: restarted as it is', () => {
    const plan = planJoin(P2, P1, pds, [KEEP, member('22', P2.name!, P2.host), member('33', P3.name!, P3.host)], true, facts({ entries: ['member'], memberData: true }));
    expect(plan).toMatchObject({ kind: 'start', remove: [], resume: expect.stringMatching(/holds the data of member/) });
  });
  it("another topology PD's half-join blocks PD's join: removed too", () => {
    const plan = planJoin(P2, P1, pds, [KEEP, member('33', P3.name!, P3.host), member('44', '', P3.host)], true, facts());
    expect(plan).toMatchObject({ kind: 'start', remove: [{ member: { id: '44' }, why: expect.stringMatching(P3.name!) }] });
  });
  it('a nameless member that is no PD of the topology: refused, with the pd-ctl command', () => {
    const plan = planJoin(P2, P1, pds, [KEEP, member('33', P3.name!, P3.host), member('99', '', '10.0.0.9')], true, facts());
    expect(plan).toMatchObject({ kind: 'refuse', suggestion: expect.stringContaining('pd-ctl member delete id 99') });
  });
  it('no leader with two voters, one of them this PD: recover the quorum first', () => {
    const plan = planJoin(P2, P1, pds, [KEEP, member('22', '', P2.host)], false, facts({ entries: ['join'], join: `${P2.name}=https://10.0.0.2:2380` }));
    expect(plan).toMatchObject({ kind: 'recover-quorum', blocker: { id: '22' }, owner: P2 });
  });
  it('two voters, this stopped PD one of them, the leader not stepped down yet: recover all the same', () => {
    const plan = planJoin(P2, P1, pds, [KEEP, member('22', P2.name!, P2.host)], true, facts({ entries: ['member'], memberData: true }));
    expect(plan).toMatchObject({ kind: 'recover-quorum', blocker: { id: '22' } });
  });
  it('no leader with three voters: not ours to force, refused', () => {
    const plan = planJoin(P2, P1, pds, [KEEP, member('22', '', P2.host), member('33', P3.name!, P3.host)], false, facts());
    expect(plan).toMatchObject({ kind: 'refuse', message: expect.stringMatching(/has no leader/) });
  });
  it('a symlinked data dir is refused', () => {
    expect(planJoin(P2, P1, pds, [KEEP], true, facts({ symlink: true }))).toMatchObject({ kind: 'refuse', message: expect.stringContaining('10.0.0.2') });
  });
});

describe('host facts and checks', () => {
  it('the data-dir script, run for real by sh: entries, join file, etcd data, listening ports', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-pdjoin-'));
    try {
      const data = path.join(dir, "pd data 'x'");
      fs.mkdirSync(path.join(data, 'member', 'wal'), { recursive: true });
      fs.writeFileSync(path.join(data, 'join'), 'pd-a=https://10.0.0.1:2380,pd-b=https://10.0.0.2:2380');
      const f = parsePdDataFacts(execFileSync('sh', ['-c', pdDataFactsInner({ dataDir: data })], { encoding: 'utf8' }));
      expect(f).toMatchObject({ symlink: false, entries: ['join', 'member'].sort(), join: 'pd-a=https://10.0.0.1:2380,pd-b=https://10.0.0.2:2380', memberData: true });
      fs.symlinkSync(data, path.join(dir, 'link'));
      expect(parsePdDataFacts(execFileSync('sh', ['-c', pdDataFactsInner({ dataDir: path.join(dir, 'link') })], { encoding: 'utf8' })).symlink).toBe(true);
      const empty = parsePdDataFacts(execFileSync('sh', ['-c', pdDataFactsInner({ dataDir: path.join(dir, 'none') })], { encoding: 'utf8' }));
      expect(empty.entries).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('listening ports from /proc/net/tcp lines (LISTEN = 0A only)', () => {
    const lines = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 00000000:0950 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1',
      '   1: 0B00000A:0094 0100000A:C350 01 00000000:00000000 00:00000000 00000000  1000        0 2',
      '   0: 00000000000000000000000000000000:094C 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 3',
    ];
    expect([...listeningPorts(lines)].sort()).toEqual([2380, 2384]); // 0x094C, 0x0950
  });
  it('--config-check: success, warnings only, and the v7.1+ error printed with exit 0 are told apart', () => {
    expect(configCheckProblem(0, 'config check successful\n', '')).toBeUndefined();
    expect(configCheckProblem(0, 'Config contains undefined item: foo\n', '')).toBeUndefined();
    expect(configCheckProblem(0, '-initial-cluster and -join can not be provided at the same time\n', '')).toMatch(/exit 0: -initial-cluster and -join/);
    expect(configCheckProblem(1, '', 'toml: line 3: expected key\n')).toMatch(/exit 1: toml/);
    expect(configCheckProblem(0, '', '')).toMatch(/no output/);
  });
  it('--force-new-cluster goes on the pd-server line of the run script TiUP renders, nothing else changes', () => {
    const script = renderRunScript(P1, TOPO, { tls: true, pdMode: 'initial' });
    const forced = withForceNewCluster(script)!;
    expect(forced.split('\n').filter((l) => !script.split('\n').includes(l))).toEqual(['    --force-new-cluster \\']);
    expect(forced.indexOf('bin/pd-server')).toBeLessThan(forced.indexOf('--force-new-cluster'));
    expect(forced.indexOf('--force-new-cluster')).toBeLessThan(forced.indexOf('--name='));
    expect(withForceNewCluster('#!/bin/sh\nexec something\n')).toBeUndefined();
  });
});

/**
 * A PD as v6.5 … v8.5 behave, enough for scale-out: etcd members (voters), a leader while a
 * majority of voters runs, the strict join of join.go, and `--force-new-cluster` on a restart.
 */
class FakePd {
  members: EtcdMember[] = [KEEP];
  running = new Set<string>([KEEP.id]);
  nextId = 100;
  removedById: string[] = [];
  /** PD's own API fails (as when its etcd calls time out) while etcd itself is fine. */
  apiDown = false;
  /** Members whose process answers on its client port although etcd does not count them running (a slow join). */
  answering = new Set<string>();
  /** etcd's keys as PD writes them (8-byte big-endian uint64s). */
  kv = new Map<string, Buffer>([
    ['/pd/cluster_id', u64(7n)],
    ['/pd/7/alloc_id', u64(5000n)],
    ['/pd/7/raft', Buffer.from([0x08, 0x07])],
    ['/pd/7/timestamp', u64(1_700_000_000_000_000_000n)],
  ]);
  get leader(): boolean {
    return this.running.size > this.members.length / 2;
  }
  client(): PdClient {
    const refuse = () => Promise.reject(new Error('PD 10.0.0.1:2379 GET /pd/api/v1/members: HTTP 503: [PD:apiutil:ErrRedirectNoLeader]redirect finds no leader'));
    const apiFails = () => Promise.reject(new Error('PD 10.0.0.1:2379 GET /pd/api/v1/health: HTTP 500: [PD:etcd:ErrEtcdKVGet]etcd KV get failed: context deadline exceeded'));
    const noQuorum = () => Promise.reject(new Error("PD 10.0.0.1:2379 refused etcd get: etcdserver: request timed out"));
    return {
      members: async () => (this.apiDown ? apiFails() : this.leader ? { clusterId: '1', members: this.members.map((m) => ({ name: m.name, memberId: m.id, peerUrls: m.peerUrls, clientUrls: m.clientUrls })), leader: { name: KEEP.name, memberId: KEEP.id, peerUrls: [], clientUrls: [] } } : refuse()),
      health: async () => (this.apiDown ? apiFails() : this.members.map((m) => ({ name: m.name, memberId: m.id, clientUrls: m.clientUrls, health: this.running.has(m.id) && m.name !== '' }))),
      etcdMembers: async () => this.members.map((m) => ({ ...m })),
      // etcd's KV on the kept PD: a linearizable read needs the quorum, a serializable one does not.
      etcdGet: async (key: string, o: { serializable?: boolean } = {}) => {
        if (!o.serializable && !this.leader) return noQuorum();
        const v = this.kv.get(key);
        return v && { key, value: v, createRevision: '1', modRevision: '1' };
      },
      etcdPutIf: async (key: string, value: Buffer, guard: { key: string; exists: boolean }, was?: Buffer) => {
        if (!this.leader) return noQuorum();
        if (this.kv.has(guard.key) !== guard.exists || (was && !this.kv.get(key)?.equals(was))) return false;
        this.kv.set(key, value);
        return true;
      },
      call: async (method: string, p: string, _b: unknown, only?: string[]) => {
        if (method === 'GET' && p === '/health') {
          // etcd's /health on the client port: answers while the process runs, whatever PD's API does.
          const host = only?.[0]?.replace(/:\d+$/, '');
          const m = this.members.find((x) => x.peerUrls.some((u) => u.includes(`//${host}:`)));
          if (host === '10.0.0.1' || (m && (this.running.has(m.id) || this.answering.has(m.id)))) return { status: 200, body: '{"health":"true"}', headers: {}, endpoint: only![0] };
          throw new Error(`connect ECONNREFUSED ${only?.[0]}`);
        }
        const id = /^\/pd\/api\/v1\/members\/id\/(\d+)$/.exec(p)?.[1];
        if (method !== 'DELETE' || !id) throw new Error(`unexpected ${method} ${p}`);
        if (!this.leader) return { status: 500, body: 'context deadline exceeded', headers: {}, endpoint: '10.0.0.1:2379' };
        this.removedById.push(id);
        this.members = this.members.filter((m) => m.id !== id);
        this.running.delete(id);
        return { status: 200, body: `"removed, pd: ${id}"`, headers: {}, endpoint: '10.0.0.1:2379' };
      },
    } as unknown as PdClient;
  }
}

type Behaviour = 'fail-after-add' | 'ok' | 'fail-once-after-add' | 'fail-after-start';

function joiningHost(ex: FakeExecutor, pd: FakePd, inst: typeof P2, behaviour: () => Behaviour): { state: string; crashes: number; log: string[]; listening: number[]; configCheck: string } {
  const h = { state: 'inactive', crashes: 0, log: [] as string[], listening: [] as number[], configCheck: 'config check successful\n' };
  const data = inst.dataDir!;
  const joinFile = `${data}/join`;
  const mine = () => pd.members.find((m) => m.name === inst.name || (m.name === '' && m.peerUrls[0].includes(`${inst.host}:2380`)));
  const crash = (why: string) => {
    h.state = 'auto-restart';
    h.crashes++;
    h.log.push(why);
  };
  const start = () => {
    h.state = 'running';
    if (ex.file(joinFile)) {
      const m = mine();
      if (!m) return crash('the member has been permanently removed from the cluster');
      if (behaviour() === 'fail-after-add') return crash('etcd failed');
      started(m);
      return;
    }
    // join.go: a nameless member or our own name → refused, nothing removed.
    if (pd.members.some((m) => m.name === '')) return crash('join meet error: there is a member that has not joined successfully');
    if (pd.members.some((m) => m.name === inst.name)) return crash('join meet error: missing data or join a duplicated pd');
    const m: EtcdMember = { id: String(pd.nextId++), name: '', peerUrls: [`https://${inst.host}:2380`], clientUrls: [] };
    pd.members.push(m);
    ex.addFile(joinFile, [...pd.members.map((x) => `${x.name || inst.name}=${x.peerUrls[0]}`)].join(','), { owner: 'tidb', mode: 0o600 });
    const b = behaviour();
    if (b === 'fail-after-add' || b === 'fail-once-after-add') return crash('etcd failed after the member add');
    started(m);
  };
  // etcd wrote its WAL, published the name, ran; 'fail-after-start' then crashes (a member that did run).
  const started = (m: EtcdMember) => {
    ex.addFile(`${data}/member/wal/0000000000000000-0000000000000000.wal`, 'wal', { owner: 'tidb', mode: 0o600 });
    m.name = inst.name!;
    if (behaviour() === 'fail-after-start') return crash('panic after start');
    pd.running.add(m.id);
  };
  ex.onExec(/systemctl (start|restart) '?pd-2379\.service'?$/, () => void start());
  ex.onExec(/^systemctl stop '?pd-2379\.service'?$/, () => {
    h.state = 'inactive';
    const m = mine();
    if (m) pd.running.delete(m.id);
  });
  ex.onExec(/^systemctl show -p Id/, () => `Id=pd-2379.service\nLoadState=loaded\nActiveState=${h.state === 'running' ? 'active' : h.state === 'auto-restart' ? 'activating' : 'inactive'}\nSubState=${h.state === 'inactive' ? 'dead' : h.state}\nNRestarts=0\nActiveEnterTimestamp=\nMainPID=0\n`);
  ex.onExec(/^sudo -n -u '?tidb'? -- sh -c/, () => {
    const prefix = `${data}/`;
    const under = [...ex.files.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
    const entries = [...new Set(under.map((k) => k.split('/')[0]))];
    const j = ex.readText(joinFile);
    const net = h.listening.map((port) => `net    0: 00000000:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0 0 1`);
    const etcd = [...(under.some((k) => k.startsWith('member/')) ? ['member'] : []), ...(under.some((k) => /^member\/wal\/[^/]+\.wal$/.test(k)) ? ['wal'] : [])];
    return [...entries.map((e) => `entry ${e}`), ...(j === undefined ? [] : [`join ${Buffer.from(j).toString('base64')}`]), ...etcd, ...net].join('\n') + '\n';
  });
  ex.onExec(/--config-check/, () => h.configCheck);
  ex.onExec(/tiseal_cd/, () => h.log.join('\n'));
  ex.onExec(/^mv -T (\S+) (\S+)$/, (_c, { match }) => {
    const [from, to] = [match![1], match![2]].map((x) => x.replace(/^'|'$/g, ''));
    for (const [k, v] of [...ex.files]) {
      if (k === from || k.startsWith(`${from}/`)) {
        ex.files.delete(k);
        ex.files.set(to + k.slice(from.length), v);
      }
    }
  });
  return h;
}

function keptHost(ex: FakeExecutor, pd: FakePd): { restarts: string[] } {
  const k = { restarts: [] as string[] };
  ex.addFile(P1.runScript, renderRunScript(P1, TOPO, { tls: true, pdMode: 'initial' }), { owner: 'tidb', mode: 0o755 });
  const start = (script: string) => {
    k.restarts.push(script.includes('--force-new-cluster') ? 'forced' : 'normal');
    pd.running.add(KEEP.id);
    if (script.includes('--force-new-cluster')) {
      pd.members = pd.members.filter((m) => m.id === KEEP.id);
      pd.running = new Set([KEEP.id]);
    }
  };
  ex.onExec(/^systemctl stop '?pd-2379\.service'?$/, () => void pd.running.delete(KEEP.id));
  ex.onExec(/^systemctl stop '?tiseal-force-pd-2379\.service'?; rm -f /, () => '');
  ex.onExec(/systemctl (restart|start) '?pd-2379\.service'?$/, () => start(ex.readText(P1.runScript)!));
  // The forced start: a transient unit running root's copy of the run script (force-once.ts).
  ex.onExec(/^systemd-run --unit='?tiseal-force-pd-2379\.service'? .*\/bin\/bash '?(\S+?)'?$/, (_c, { match }) => start(ex.readText(match![1])!));
  return k;
}

function context(pd: FakePd, pool: FakePool): TlsContext {
  return fakeTlsContext({ runId: '20261130T010000-ab12', topology: TOPO, cluster: 'three', opts: { concurrency: 2 }, pool, pd: pd.client(), keepPd: P1, removedPds: [P2, P3], flags: { keyType: 'rsa' } });
}

describe('scale-out when a join fails (fake hosts, a PD as strict as v6.5–v8.5)', () => {
  // The decision is under test, not PD's 3 s election: a no-quorum verdict takes 3 × 100 ms here.
  const saved = quorumTimings.electionMs;
  beforeAll(() => (quorumTimings.electionMs = 100));
  afterAll(() => (quorumTimings.electionMs = saved));

  it('fails after the member add (1 → 2 voters, no quorum): the kept PD is forced back to one member, the host is named; a re-run joins', async () => {
    const pd = new FakePd();
    const pool = new FakePool();
    let behaviour: Behaviour = 'fail-after-add';
    const h2 = joiningHost(pool.host(P2.host), pd, P2, () => behaviour);
    joiningHost(pool.host(P3.host), pd, P3, () => 'ok');
    const kept = keptHost(pool.host(P1.host), pd);
    const original = pool.host(P1.host).readText(P1.runScript);
    const ctx = context(pd, pool);

    const d = await scaleOutStep.decide(ctx);
    const err = await d.actions[0].run().then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/^10\.0\.0\.2 pd-2379\.service: PD pd-10\.0\.0\.2-2379 failed to start after it was added as a member/);
    expect(err?.message).toMatch(/restarted the kept PD pd-10\.0\.0\.1-2379 on 10\.0\.0\.1 once with --force-new-cluster/);
    expect(err?.message).toMatch(/PD pd-10\.0\.0\.2-2379 on 10\.0\.0\.2 is no longer a member/);
    // pd-recover --from-old-member: alloc_id raised by its safe guard; the TSO window did not go back.
    expect(err?.message).toMatch(/raised alloc_id from 5000 to 100005000 as `pd-recover --from-old-member` does/);
    expect(pd.kv.get('/pd/7/alloc_id')).toEqual(u64(100_005_000n));
    expect((err as { suggestion?: string }).suggestion).toMatch(/10\.0\.0\.2/);
    // Quorum back: one member with a leader; forced once, then a normal restart on the restored script.
    expect(pd.members.map((m) => m.id)).toEqual([KEEP.id]);
    expect(pd.leader).toBe(true);
    expect(kept.restarts).toEqual(['forced', 'normal']);
    // The flag never reached the run script (a transient unit ran it, then stopped); its copy is gone.
    expect(pool.host(P1.host).readText(P1.runScript)).toBe(original);
    expect(pool.host(P1.host).calls.some((c) => 'path' in c && c.path === P1.runScript && ['put', 'backup', 'remove'].includes(c.op))).toBe(false);
    expect(pool.host(P1.host).commands().some((c) => /systemctl stop '?tiseal-force-pd-2379\.service'?; rm -f '?\/run\/tiseal\/pd-2379-force-new-cluster\.sh/.test(c))).toBe(true);
    // The failing PD is stopped (it must not rejoin the old membership), its data kept.
    expect(h2.state).toBe('inactive');
    expect(pool.host(P2.host).file(`${P2.dataDir}/join`)).toBeDefined();

    // The operator fixes the host; the re-run moves the now stale join aside and joins.
    behaviour = 'ok';
    const ctx2 = context(pd, pool);
    const again = await scaleOutStep.decide(ctx2);
    expect(await again.actions[0].run()).toMatch(/^joined; .*join file of a member that is gone: moved to \/tidb-data\/pd-2379\.tiseal-stale-/);
    expect([...pool.host(P2.host).files.keys()].some((k) => /\/tidb-data\/pd-2379\.tiseal-stale-.*\/join$/.test(k))).toBe(true);
    expect(pd.members.map((m) => m.name)).toEqual([P1.name, P2.name]);
  });

  it('fails after the add while PD keeps its quorum (2 → 3 voters): the retry resumes the half-join from its join file, nothing removed', async () => {
    const pd = new FakePd();
    const p2 = member('22', P2.name!, P2.host);
    pd.members.push(p2);
    pd.running.add(p2.id);
    const pool = new FakePool();
    let starts = 0;
    joiningHost(pool.host(P3.host), pd, P3, () => (++starts === 1 ? 'fail-once-after-add' : 'ok'));
    keptHost(pool.host(P1.host), pd);
    const ctx: TlsContext = { ...context(pd, pool), removedPds: [P3] };
    const d = await scaleOutStep.decide(ctx);
    expect(await d.actions[0].run()).toMatch(/^joined after 2 attempts; .*join records this member/);
    expect(pd.removedById).toEqual([]);
    expect(pd.members.map((m) => m.name)).toEqual([P1.name, P2.name, P3.name]);
  });

  it("PD's API fails while the third PD joins a healthy pair: quorum is asked of etcd, nothing is stopped or forced, the join completes", async () => {
    const pd = new FakePd();
    const p2 = member('22', P2.name!, P2.host);
    pd.members.push(p2);
    pd.running.add(p2.id);
    const pool = new FakePool();
    const h2 = joiningHost(pool.host(P2.host), pd, P2, () => 'ok');
    h2.state = 'running';
    joiningHost(pool.host(P3.host), pd, P3, () => 'ok');
    const kept = keptHost(pool.host(P1.host), pd);
    const ctx: TlsContext = { ...context(pd, pool), removedPds: [P3] };
    const d = await scaleOutStep.decide(ctx);
    pd.apiDown = true; // PD answers 500 for a while, as on an etcd hiccup; etcd keeps its quorum
    const back = setTimeout(() => (pd.apiDown = false), 2000);
    try {
      expect(await d.actions[0].run()).toMatch(/^joined/);
    } finally {
      clearTimeout(back);
    }
    expect(kept.restarts).toEqual([]);
    expect(pool.host(P2.host).commands().filter((c) => /systemctl (stop|restart)/.test(c))).toEqual([]);
    expect(pd.members.map((m) => m.name)).toEqual([P1.name, P2.name, P3.name]);
  });

  it('no quorum after a join, but the new member did run (its name in etcd, a WAL on disk): refused, nothing forced', async () => {
    const pd = new FakePd();
    const pool = new FakePool();
    joiningHost(pool.host(P2.host), pd, P2, () => 'fail-after-start');
    joiningHost(pool.host(P3.host), pd, P3, () => 'ok');
    const kept = keptHost(pool.host(P1.host), pd);
    const original = pool.host(P1.host).readText(P1.runScript);
    const d = await scaleOutStep.decide(context(pd, pool));
    const err = await d.actions[0].run().then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/has no quorum .* PD pd-10\.0\.0\.2-2379 on 10\.0\.0\.2 may have run: etcd lists it with its name \(it started\); its data dir holds an etcd WAL/);
    expect(err?.message).toMatch(/only when the other voter never started/);
    expect(kept.restarts).toEqual([]);
    expect(pool.host(P1.host).readText(P1.runScript)).toBe(original);
    expect(pd.kv.get('/pd/7/alloc_id')).toEqual(u64(5000n));
  });

  it('no quorum, the other voter nameless but answering on its client port (still joining): not stopped, nothing forced', async () => {
    const pd = new FakePd();
    const pool = new FakePool();
    const h2 = joiningHost(pool.host(P2.host), pd, P2, () => 'ok');
    joiningHost(pool.host(P3.host), pd, P3, () => 'ok');
    const kept = keptHost(pool.host(P1.host), pd);
    const ctx: TlsContext = { ...context(pd, pool), removedPds: [P3] };
    const d = await scaleOutStep.decide(ctx);
    // Then PD 2 was added and its process runs, but its etcd has not caught up: 2 voters, 1 counted.
    const stuck = member('22', '', P2.host);
    pd.members.push(stuck);
    pd.answering.add(stuck.id);
    h2.state = 'running';
    const err = await d.actions[0].run().then(() => undefined, (e: Error) => e);
    expect(err?.message).toMatch(/may have run: it answers on its client port; its unit is active/);
    expect(kept.restarts).toEqual([]);
    expect(pool.host(P2.host).commands().filter((c) => /systemctl (stop|restart)/.test(c))).toEqual([]);
  });

  it('checked before the start: a busy port or a config pd-server --config-check refuses stops the join, naming the host; PD never started', async () => {
    const pd = new FakePd();
    const pool = new FakePool();
    const h2 = joiningHost(pool.host(P2.host), pd, P2, () => 'ok');
    keptHost(pool.host(P1.host), pd);
    const started = () => pool.host(P2.host).commands().some((c) => /systemctl start/.test(c));
    h2.listening = [2380];
    const busy = await (await scaleOutStep.decide(context(pd, pool))).actions[0].run().then(() => undefined, (e: Error) => e);
    expect(busy?.message).toBe('10.0.0.2: port 2380 of PD pd-10.0.0.2-2379 is in use by another process (its unit pd-2379.service is stopped)');
    h2.listening = [];
    // v7.1+ print a config error and exit 0: the output decides.
    h2.configCheck = 'toml: line 3 (last key "security.cert-path"): expected value but found "/x" instead\n';
    const bad = await (await scaleOutStep.decide(context(pd, pool))).actions[0].run().then(() => undefined, (e: Error) => e);
    expect(bad?.message).toMatch(/^10\.0\.0\.2: \/tidb-deploy\/pd-2379\/bin\/pd-server --config-check refuses \/tidb-deploy\/pd-2379\/conf\/pd\.toml \(exit 0: toml: line 3/);
    expect(started()).toBe(false);
    expect(pd.members.map((m) => m.id)).toEqual([KEEP.id]);
  });
});
