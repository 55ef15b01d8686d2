/**
 * `tiseal tls enable` / `tls disable` on the lab, end to end, checked with independent clients.
 * The scenarios share one lab and run in order: each starts from a plaintext cluster. The enable
 * is `--verify-cn` and carries the version matrix's checks at the lab's default version (v8.5:
 * PD takes a CN list, no TiDB Binlog, TiFlash without HTTP), so the matrix need not convert the
 * lab once more at that version.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab, sshOk, waitUntil } from './helpers';
import { validate } from '../support/json-schema';
import * as schema from '../../docs/tls-status.schema.json';
import { secretCopies, expectPlainCluster, expectTlsCluster } from './expect-cluster';
import { expectPrometheusScrapes } from './prometheus-targets';
import { expectNgMonitoringReachesPd } from './ngmonitoring';
import { configs, expectUnsupportedRefused, expectVerifyCnOnTls, VersionCase } from './verify-cn-checks';
import { resolveOptions } from '../../lab/options';
import { clusterDir, etcdctl, labTopology, pdJson, pdMembership, remoteChecksums, runAndKill, runTiseal, RunResult, tlsFiles, unitStartTimes } from './tiseal';

jest.setTimeout(12 * 60_000);

const PD = '10.77.0.11';

// Keys are put and read with etcdctl (etcd's v3 gRPC API through PD's client port): with a v8.4+
// CN list PD's JSON gateway (/v3/kv/*) fails by design (it dials itself without a client CN), so
// the same client must work before and after the switch.
function putKeys(info: LabInfo, scheme: 'http' | 'https', n: number): void {
  for (let i = 0; i < n; i++) etcdctl(info, PD, scheme, ['put', `tiseal-test/${i}`, `value-${i}`]);
}

function readKeys(info: LabInfo, scheme: 'http' | 'https', n: number): string[] {
  return Array.from({ length: n }, (_, i) => etcdctl(info, PD, scheme, ['get', `tiseal-test/${i}`, '--print-value-only']).trim());
}

/** The acceptance checks for a cluster that tiseal says is on TLS. */
function expectTlsClusterAndKeys(info: LabInfo): void {
  expectTlsCluster(info);
  // key files: 0600, owned by the deploy user; the CA key on no host, under any name or mount
  const f = tlsFiles(info);
  for (const h of info.hosts) {
    const modes = sshOk(info, h, 'sudo -n stat -c "%a %U %n" /tidb-deploy/*/tls/*.pem').trim().split('\n');
    expect(modes.length).toBeGreaterThan(0);
    for (const l of modes) expect(l).toMatch(/^600 tidb /);
    expect(`${h}: ${secretCopies(info, h, f.caKey).join(', ')}`).toBe(`${h}: `);
  }
}

function expectKilled(r: RunResult): void {
  if (r.signal !== 'SIGKILL') throw new Error(`expected tiseal to be killed, it exited ${r.code}:\n${r.stdout.slice(-2000)}\n${r.stderr}`);
}

describeLab('tiseal tls enable / disable on the lab', () => {
  let info: LabInfo;
  let topo: string;
  let dir: string;
  /** The plaintext configs: every line tiseal does not own is byte-identical after enable → disable. */
  let plainConfigs: Record<string, string>;
  const v85: VersionCase = { version: resolveOptions().version, binlog: false, tiflashHttp: false, pdList: true };

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
    topo = info.topologyFile;
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-tls-'));
    plainConfigs = configs(info);
  }, 15 * 60_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs at a version where PD takes a CN list (v8.4+)', () => {
    expect(v85.version).toMatch(/^v(8\.([4-9]|\d\d)|9|\d\d)/);
  });

  it('refuses to run without a terminal and without --yes, and a dry run changes nothing', async () => {
    const before = remoteChecksums(info);
    const started = unitStartTimes(info, labTopology(info));
    const members = pdMembership(info, 'http');
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
    expect(unitStartTimes(info, labTopology(info))).toEqual(started);
    expect(pdMembership(info, 'http')).toEqual(members);
    await expectUnsupportedRefused(info, plainConfigs);
  });

  it('enables TLS with --yes --verify-cn and no terminal; every CN list as v8.5 takes it; data survives; a second enable restarts nothing', async () => {
    putKeys(info, 'http', 5);
    const r = await runTiseal(info, ['tls', 'enable', topo, '--yes', '--verify-cn']);
    if (r.code !== 0) throw new Error(`enable failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);
    expectTlsClusterAndKeys(info);
    await expectVerifyCnOnTls(info, v85, r.stdout, dir);
    expect((await runTiseal(info, ['tls', 'status', topo])).code).toBe(0);
    // The real Prometheus (restarted by tiseal for its new prometheus.yml) scrapes every component over https.
    await expectPrometheusScrapes(info, 'https');
    expect(readKeys(info, 'https', 5)).toEqual(['value-0', 'value-1', 'value-2', 'value-3', 'value-4']);
    expect(JSON.parse(fs.readFileSync(`${clusterDir(info)}/meta.json`, 'utf8')).enableTls).toBe(true);

    const t = labTopology(info);
    const started = unitStartTimes(info, t);
    // Enabling again with the same lists restarts nothing.
    const again = await runTiseal(info, ['tls', 'enable', topo, '--yes', '--verify-cn']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to do, nothing restarted/);
    expect(unitStartTimes(info, t)).toEqual(started);

    // disable --dry-run on the TLS cluster: the plan and diffs back to plaintext, nothing touched
    const files = remoteChecksums(info);
    const tlsMembers = pdMembership(info, 'https');
    const dry = await runTiseal(info, ['tls', 'disable', topo, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/-cacert-path = "\/tidb-deploy\/pd-2379\/tls\/ca\.crt"/);
    expect(dry.stdout).toMatch(/would member update .*https:\/\/10\.77\.0\.1\d:2380 → http:\/\//);
    expect(remoteChecksums(info)).toBe(files);
    expect(unitStartTimes(info, t)).toEqual(started);
    expect(pdMembership(info, 'https')).toEqual(tlsMembers);

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
          if (fs.existsSync(lock) && fs.statSync(lock).size > 0) {
            clearInterval(poll);
            second = runTiseal(info, ['tls', 'enable', topo, '--yes', '--stats-file', path.join(dir, 'refused.json')]);
          }
        }, 20);
      },
    });
    const d = await disable;
    if (d.code !== 0) throw new Error(`disable failed (${d.code}):\n${d.stdout.slice(-3000)}\n${d.stderr}`);
    const s = await second!;
    expect(s.code).toBe(1);
    expect(s.stderr).toMatch(/another tiseal run holds the lock/);
    // The refused run changed nothing: it never reached a host (no SSH handshake) and ran no step.
    const refused = JSON.parse(fs.readFileSync(path.join(dir, 'refused.json'), 'utf8')) as { exitCode: number; ssh: { handshakes: number; execs: number }; steps: unknown[] };
    expect([refused.exitCode, refused.ssh.handshakes, refused.ssh.execs, refused.steps.length]).toEqual([1, 0, 0, 0]);
    await expectPlainCluster(info);
    expect(configs(info)).toEqual(plainConfigs);
    await expectPrometheusScrapes(info, 'http');
    await expectNgMonitoringReachesPd(info, 'http');
    expect(readKeys(info, 'http', 5)).toEqual(['value-0', 'value-1', 'value-2', 'value-3', 'value-4']);
    // status on a plaintext cluster: every instance off, every port plaintext, exit 0
    const st = await runTiseal(info, ['tls', 'status', topo, '--json']);
    expect(st.code).toBe(0);
    const report = JSON.parse(st.stdout);
    expect(validate(schema, report)).toEqual([]);
    // Prometheus has no TLS port of its own (TiUP keeps its web port on http): only its scrape jobs say off.
    for (const i of report.instances) expect(`${i.id}@${i.host} ${i.configured} ${i.ports.map((p: { live: string }) => p.live).join(',')}`).toMatch(i.role === 'prometheus' ? / off $/ : / off (plain,?)+$/);
  });

  // Kills at random moments (kill-resume, resume-hosts) cover staging and the moments before; these
  // two are the delicate ones: units half restarted, PD half scaled out.
  it.each([
    ['during the restart', { type: 'step-start' as const, step: /^restart-tikv/, afterMs: 200 }],
    ['during scale-out', { type: 'step-start' as const, step: 'scale-out', afterMs: 1500 }],
  ])('resumes after a SIGKILL %s', async (_when, kill) => {
    const killed = await runAndKill(info, ['tls', 'enable', topo, '--yes'], kill);
    expectKilled(killed);
    // the dead run's lock died with it: the bare re-run resumes, no hand needed
    const resumed = await runTiseal(info, ['tls', 'enable', topo, '--yes']);
    if (resumed.code !== 0) throw new Error(`resume failed (${resumed.code}):\n${resumed.stdout.slice(-3000)}\n${resumed.stderr}`);
    expect(resumed.stdout).toMatch(/Resuming the interrupted run/);
    expectTlsClusterAndKeys(info);
    await labReset({ keepStateDir: false });
  });

  it('stops with the failing host and unit when a TiKV cannot read its key, and disable rolls back', async () => {
    const killed = await runAndKill(info, ['tls', 'enable', topo, '--yes'], { type: 'step-done', step: 'stage' });
    expectKilled(killed);
    // The key file itself stays 0600 tidb (tiseal would repair that); its directory becomes
    // root-only, so the TiKV process (user tidb) cannot open it.
    sshOk(info, '10.77.0.12', 'sudo -n chown root:root /tidb-deploy/tikv-20160/tls && sudo -n chmod 700 /tidb-deploy/tikv-20160/tls');
    const failed = await runTiseal(info, ['tls', 'enable', topo, '--yes']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/10\.77\.0\.12 tikv-20160\.service/);
    expect(failed.stderr).toMatch(/tls disable/);
    const back = await runTiseal(info, ['tls', 'disable', topo, '--yes']);
    if (back.code !== 0) throw new Error(`rollback failed (${back.code}):\n${back.stdout.slice(-3000)}\n${back.stderr}`);
    await expectPlainCluster(info);
    sshOk(info, '10.77.0.12', 'sudo -n chown tidb:tidb /tidb-deploy/tikv-20160/tls && sudo -n chmod 755 /tidb-deploy/tikv-20160/tls');
  });
});
