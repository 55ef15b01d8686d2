/**
 * `tiseal tls enable` / `tls disable` on the lab, end to end, checked with independent clients.
 * The scenarios share one lab and run in order: each starts from a plaintext cluster.
 */
import * as fs from 'fs';
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab, sshOk, waitUntil } from './helpers';
import { validate } from '../support/json-schema';
import * as schema from '../../docs/tls-status.schema.json';
import {
  certSans,
  clusterDir,
  curl,
  etcdctlMembers,
  labTopology,
  pdJson,
  remoteChecksums,
  runAndKill,
  runTiseal,
  RunResult,
  sClient,
  tlsEndpoints,
  tlsFiles,
  unitStartTimes,
} from './tiseal';

jest.setTimeout(12 * 60_000);

type Members = { members: Array<{ name: string; peer_urls: string[]; client_urls: string[] }> };
type Stores = { stores: Array<{ store: { address: string; state_name: string } }> };

const PD = '10.77.0.11';

/** Put keys through PD's etcd gateway (plain http, before enable). */
function putKeys(info: LabInfo, scheme: 'http' | 'https', n: number): void {
  const f = tlsFiles(info);
  const tls = scheme === 'https' ? ['--cacert', f.ca, '--cert', f.cert, '--key', f.key] : [];
  for (let i = 0; i < n; i++) {
    const body = JSON.stringify({ key: Buffer.from(`tiseal-test/${i}`).toString('base64'), value: Buffer.from(`value-${i}`).toString('base64') });
    const r = curl([...tls, '-X', 'POST', '-d', body, `${scheme}://${PD}:2379/v3/kv/put`]);
    expect(r.code).toBe(0);
  }
}

function readKeys(info: LabInfo, scheme: 'http' | 'https', n: number): string[] {
  const f = tlsFiles(info);
  const tls = scheme === 'https' ? ['--cacert', f.ca, '--cert', f.cert, '--key', f.key] : [];
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = curl([...tls, '-X', 'POST', '-d', JSON.stringify({ key: Buffer.from(`tiseal-test/${i}`).toString('base64') }), `${scheme}://${PD}:2379/v3/kv/range`]);
    const kv = JSON.parse(r.out).kvs?.[0];
    out.push(kv ? Buffer.from(kv.value, 'base64').toString() : '');
  }
  return out;
}

/** The acceptance checks for a cluster that tiseal says is on TLS. */
function expectTlsCluster(info: LabInfo): void {
  const t = labTopology(info);
  // every TLS port of every instance: a verified handshake, and a certificate naming the host
  for (const { inst, name, port } of tlsEndpoints(t)) {
    const r = sClient(info, inst.host, port, ['-showcerts']);
    if (r.code !== 0 || !/Verify return code: 0 \(ok\)/.test(r.out)) throw new Error(`${inst.id} ${name} ${inst.host}:${port}: ${r.out.slice(-800)}`);
    expect(certSans(r.cert)).toContain(`IP Address:${inst.host}`);
  }
  // plain http to PD's client port fails
  const plain = curl([`http://${PD}:2379/pd/api/v1/members`]);
  expect(plain.code === 0 && /"members"/.test(plain.out)).toBe(false);
  // a client without a certificate is refused by PD and TiKV
  const f = tlsFiles(info);
  expect(curl(['--cacert', f.ca, `https://${PD}:2379/pd/api/v1/members`]).code).not.toBe(0);
  expect(curl(['--cacert', f.ca, `https://${PD}:20160/`]).code).not.toBe(0);
  // etcd's own view (gRPC through PD's client port), and PD's
  const lines = etcdctlMembers(info, PD, 'https');
  expect(lines).toHaveLength(3);
  for (const l of lines) expect(l).toMatch(/https:\/\/10\.77\.0\.1[123]:2380/);
  const m = pdJson<Members>(info, PD, '/pd/api/v1/members', 'https');
  expect(m.members.map((x) => x.name).sort()).toEqual(t.instances.filter((i) => i.role === 'pd').map((i) => i.name).sort());
  for (const x of m.members) {
    expect(x.peer_urls.every((u) => u.startsWith('https://'))).toBe(true);
    expect(x.client_urls.every((u) => u.startsWith('https://'))).toBe(true);
  }
  const stores = pdJson<Stores>(info, PD, '/pd/api/v1/stores', 'https');
  expect(stores.stores.length).toBeGreaterThanOrEqual(4);
  for (const s of stores.stores) expect(`${s.store.address} ${s.store.state_name}`).toMatch(/ Up$/);
  // key files: 0600, owned by the deploy user; the CA key on no host
  const caKeyLine = fs.readFileSync(f.caKey, 'utf8').split('\n')[3];
  for (const h of info.hosts) {
    const modes = sshOk(info, h, 'sudo -n stat -c "%a %U %n" /tidb-deploy/*/tls/*.pem').trim().split('\n');
    expect(modes.length).toBeGreaterThan(0);
    for (const l of modes) expect(l).toMatch(/^600 tidb /);
    const found = sshOk(info, h, `sudo -n grep -rlF -- '${caKeyLine}' /tidb-deploy /tidb-data /home /tmp /etc /root /var/tmp 2>/dev/null; true`);
    expect(found.trim()).toBe('');
    expect(sshOk(info, h, 'sudo -n find / -xdev -name ca.key -o -xdev -name "ca.pem" 2>/dev/null | grep -v "^/proc" ; true').trim()).toBe('');
  }
}

function expectKilled(r: RunResult): void {
  if (r.signal !== 'SIGKILL') throw new Error(`expected tiseal to be killed, it exited ${r.code}:\n${r.stdout.slice(-2000)}\n${r.stderr}`);
}

function expectPlainCluster(info: LabInfo): void {
  const lines = etcdctlMembers(info, PD, 'http');
  expect(lines).toHaveLength(3);
  for (const l of lines) expect(l).toMatch(/http:\/\/10\.77\.0\.1[123]:2380/);
  const m = pdJson<Members>(info, PD, '/pd/api/v1/members', 'http');
  expect(m.members).toHaveLength(3);
  for (const x of m.members) expect([...x.peer_urls, ...x.client_urls].every((u) => u.startsWith('http://'))).toBe(true);
  const stores = pdJson<Stores>(info, PD, '/pd/api/v1/stores', 'http');
  for (const s of stores.stores) expect(`${s.store.address} ${s.store.state_name}`).toMatch(/ Up$/);
  const t = labTopology(info);
  for (const { inst, port } of tlsEndpoints(t)) {
    // plaintext everywhere: no TLS handshake completes
    const r = sClient(info, inst.host, port);
    expect(r.code).not.toBe(0);
  }
}

describeLab('tiseal tls enable / disable on the lab', () => {
  let info: LabInfo;
  let topo: string;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
    topo = info.topologyFile;
  }, 15 * 60_000);

  it('refuses to run without a terminal and without --yes, and a dry run changes nothing', async () => {
    const before = remoteChecksums(info);
    const noYes = await runTiseal(info, ['tls', 'enable', topo]);
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toMatch(/no terminal to ask for confirmation.*\n.*--yes/);
    const dry = await runTiseal(info, ['tls', 'enable', topo, '--dry-run']);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/would remove PD/);
    expect(dry.stdout).toMatch(/\+cacert-path = "\/tidb-deploy\/pd-2379\/tls\/ca\.crt"/);
    expect(dry.stdout).toMatch(/would restart tikv-20160\.service/);
    expect(remoteChecksums(info)).toBe(before);
  });

  it('enables TLS with --yes and no terminal; data survives; a second enable restarts nothing', async () => {
    putKeys(info, 'http', 5);
    const r = await runTiseal(info, ['tls', 'enable', topo, '--yes']);
    if (r.code !== 0) throw new Error(`enable failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);
    expectTlsCluster(info);
    expect(readKeys(info, 'https', 5)).toEqual(['value-0', 'value-1', 'value-2', 'value-3', 'value-4']);
    expect(JSON.parse(fs.readFileSync(`${clusterDir(info)}/meta.json`, 'utf8')).enableTls).toBe(true);

    const t = labTopology(info);
    const started = unitStartTimes(info, t);
    const again = await runTiseal(info, ['tls', 'enable', topo, '--yes']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to do, nothing restarted/);
    expect(unitStartTimes(info, t)).toEqual(started);

    // disable --dry-run on the TLS cluster: the plan and diffs back to plaintext, nothing touched
    const files = remoteChecksums(info);
    const dry = await runTiseal(info, ['tls', 'disable', topo, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/-cacert-path = "\/tidb-deploy\/pd-2379\/tls\/ca\.crt"/);
    expect(dry.stdout).toMatch(/would member update .*https:\/\/10\.77\.0\.1\d:2380 → http:\/\//);
    expect(remoteChecksums(info)).toBe(files);

    // the run scripts tiseal left let any PD restart on its own and rejoin (joined ones keep --join)
    for (const h of ['10.77.0.11', '10.77.0.12', '10.77.0.13']) {
      sshOk(info, h, 'sudo -n systemctl restart pd-2379.service');
      await waitUntil(`PD on ${h} healthy after a restart`, 60_000, () => {
        const health = pdJson<Array<{ name: string; health: boolean }>>(info, PD, '/pd/api/v1/health', 'https');
        return health.length === 3 && health.every((m) => m.health) ? true : undefined;
      }, 1000);
    }
  });

  it('refuses a second concurrent run with the lock; disable brings the lab back to plaintext', async () => {
    let second: Promise<Awaited<ReturnType<typeof runTiseal>>> | undefined;
    const disable = runTiseal(info, ['tls', 'disable', topo, '--yes'], {
      onSpawn: () => {
        const lock = `${clusterDir(info)}/lock`;
        const poll = setInterval(() => {
          if (fs.existsSync(lock)) {
            clearInterval(poll);
            second = runTiseal(info, ['tls', 'enable', topo, '--yes']);
          }
        }, 20);
      },
    });
    const d = await disable;
    if (d.code !== 0) throw new Error(`disable failed (${d.code}):\n${d.stdout.slice(-3000)}\n${d.stderr}`);
    const s = await second!;
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/another tiseal run holds the lock/);
    expectPlainCluster(info);
    expect(readKeys(info, 'http', 5)).toEqual(['value-0', 'value-1', 'value-2', 'value-3', 'value-4']);
    // status on a plaintext cluster: every instance off, every port plaintext, exit 0
    const st = await runTiseal(info, ['tls', 'status', topo, '--json']);
    expect(st.code).toBe(0);
    const report = JSON.parse(st.stdout);
    expect(validate(schema, report)).toEqual([]);
    for (const i of report.instances) expect(`${i.id}@${i.host} ${i.configured} ${i.ports.map((p: { live: string }) => p.live).join(',')}`).toMatch(/ off (plain,?)+$/);
  });

  it.each([
    ['after scale-in', { type: 'step-done' as const, step: 'scale-in' }],
    ['during staging', { type: 'step-start' as const, step: 'stage', afterMs: 300 }],
    ['during the restart', { type: 'step-start' as const, step: /^restart-tikv/, afterMs: 200 }],
    ['during scale-out', { type: 'step-start' as const, step: 'scale-out', afterMs: 1500 }],
  ])('resumes after a SIGKILL %s', async (_when, kill) => {
    const killed = await runAndKill(info, ['tls', 'enable', topo, '--yes'], kill);
    expectKilled(killed);
    // the dead run's lock is reported, not silently stolen
    const refused = await runTiseal(info, ['tls', 'enable', topo, '--yes']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/stale lock .* no longer running/);
    fs.rmSync(`${clusterDir(info)}/lock`);
    const resumed = await runTiseal(info, ['tls', 'enable', topo, '--yes']);
    if (resumed.code !== 0) throw new Error(`resume failed (${resumed.code}):\n${resumed.stdout.slice(-3000)}\n${resumed.stderr}`);
    expect(resumed.stdout).toMatch(/Resuming the interrupted run/);
    expectTlsCluster(info);
    await labReset({ keepStateDir: false });
  });

  it('stops with the failing host and unit when a TiKV cannot read its key, and disable rolls back', async () => {
    const killed = await runAndKill(info, ['tls', 'enable', topo, '--yes'], { type: 'step-done', step: 'stage' });
    expectKilled(killed);
    fs.rmSync(`${clusterDir(info)}/lock`);
    // The key file itself stays 0600 tidb (tiseal would repair that); its directory becomes
    // root-only, so the TiKV process (user tidb) cannot open it.
    sshOk(info, '10.77.0.12', 'sudo -n chown root:root /tidb-deploy/tikv-20160/tls && sudo -n chmod 700 /tidb-deploy/tikv-20160/tls');
    const failed = await runTiseal(info, ['tls', 'enable', topo, '--yes']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/10\.77\.0\.12 tikv-20160\.service/);
    expect(failed.stderr).toMatch(/tls disable/);
    const back = await runTiseal(info, ['tls', 'disable', topo, '--yes']);
    if (back.code !== 0) throw new Error(`rollback failed (${back.code}):\n${back.stdout.slice(-3000)}\n${back.stderr}`);
    expectPlainCluster(info);
    sshOk(info, '10.77.0.12', 'sudo -n chown tidb:tidb /tidb-deploy/tikv-20160/tls && sudo -n chmod 755 /tidb-deploy/tikv-20160/tls');
  });
});
