/**
 * Resume from the hosts alone (issue #17): a run SIGKILLed at a random moment, then its journal
 * and lock deleted (another control machine, a lost state dir), then the same command with
 * `--yes` converges: 3 PD members on the wanted scheme, every unit up, and a PD key written
 * before the kills still there. Checked with curl, etcdctl and openssl (expect-cluster.ts).
 *
 * Rounds: TISEAL_RESUME_ROUNDS (default 2, one killed enable and one killed disable, to keep CI
 * under its time limit: each round is a killed run plus a full one, ~1 min on the lab; the issue's
 * ≥ 10 is `TISEAL_RESUME_ROUNDS=10`). Kill moments are random and printed to replay.
 */
import { randomBytes } from 'crypto';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab } from './helpers';
import { expectPlainCluster, expectTlsCluster } from './expect-cluster';
import { clusterDir, curl, labTopology, RunResult, runTiseal, tlsFiles } from './tiseal';

jest.setTimeout(40 * 60_000);

const ROUNDS = Number(process.env.TISEAL_RESUME_ROUNDS ?? 2);

type Cmd = 'enable' | 'disable';

function forgetRun(info: LabInfo): void {
  for (const f of ['journal.jsonl', 'lock']) fs.rmSync(path.join(clusterDir(info), f), { force: true });
}

function failed(what: string, r: RunResult): Error {
  return new Error(`${what} (exit ${r.code}, signal ${r.signal}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);
}

describeLab('SIGKILL at a random moment, journal and lock deleted: the re-run converges from the hosts', () => {
  let info: LabInfo;
  const key = Buffer.from(`tiseal-test/resume-hosts-${randomBytes(4).toString('hex')}`).toString('base64');
  const value = Buffer.from(randomBytes(8).toString('hex')).toString('base64');
  const pd = () => labTopology(info).instances.find((i) => i.role === 'pd')!.host;

  /** The key written before the first kill, read through PD's etcd gateway. */
  function expectKeyKept(scheme: 'http' | 'https', state = info): void {
    const f = tlsFiles(state);
    const tls = scheme === 'https' ? ['--cacert', f.ca, '--cert', f.cert, '--key', f.key] : [];
    const r = curl([...tls, '-X', 'POST', '-d', JSON.stringify({ key }), `${scheme}://${pd()}:2379/v3/kv/range`]);
    expect(`${r.code} ${JSON.parse(r.out || '{}').kvs?.[0]?.value}`).toBe(`0 ${value}`);
  }

  async function expectConverged(want: Cmd): Promise<void> {
    if (want === 'enable') expectTlsCluster(info);
    else await expectPlainCluster(info);
    expectKeyKept(want === 'enable' ? 'https' : 'http');
  }

  /** Kill `cmd` after `ms`, forget the run on this machine, re-run it with --yes (from `rerun`'s state dir). */
  async function killAndRerun(cmd: Cmd, ms: number, rerun: LabInfo = info): Promise<RunResult> {
    const killed = await runTiseal(info, ['tls', cmd, info.topologyFile, '--yes'], { onSpawn: (c) => setTimeout(() => c.kill('SIGKILL'), ms) });
    if (killed.signal !== 'SIGKILL' && killed.code !== 0) throw failed(`${cmd} killed at ${ms} ms failed on its own`, killed);
    forgetRun(info);
    const again = await runTiseal(rerun, ['tls', cmd, info.topologyFile, '--yes']);
    if (again.code !== 0) throw failed(`re-run of ${cmd} after a kill at ${ms} ms, journal and lock deleted`, again);
    return again;
  }

  // Kill moments are drawn over about a full run on the lab (enable ~19 s, disable ~17 s measured in
  // CI); one that falls after the end just lets the run finish. TISEAL_RESUME_BOUND_MS widens them.
  const bound = Number(process.env.TISEAL_RESUME_BOUND_MS ?? 0);
  const durations: Record<Cmd, number> = { enable: bound || 19_000, disable: bound || 17_000 };
  /** State dirs of the "other machines", removed at the end. */
  const others: string[] = [];
  const otherMachine = (prefix: string): LabInfo => {
    const dir = path.join(os.tmpdir(), `${prefix}-${randomBytes(4).toString('hex')}`);
    others.push(dir);
    return { ...info, stateDir: dir };
  };

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
    const put = curl(['-X', 'POST', '-d', JSON.stringify({ key, value }), `http://${pd()}:2379/v3/kv/put`]);
    if (put.code !== 0) throw new Error(`PD kv put: ${put.out}`);
    process.stdout.write(`resume-hosts: kill moments drawn over ${durations.enable} ms (enable), ${durations.disable} ms (disable)\n`);
  }, 20 * 60_000);

  afterAll(async () => {
    // Leave the lab plaintext for the tests after this one (the state dir has the CA again by then).
    for (const d of others) fs.rmSync(d, { recursive: true, force: true });
    if (!info) return;
    forgetRun(info);
    await runTiseal(info, ['tls', 'disable', info.topologyFile, '--yes']);
  });

  it(`${ROUNDS} rounds: enable and disable killed at random moments over the whole run, re-run with no journal`, async () => {
    const plan = Array.from({ length: ROUNDS }, (_, k) => {
      const cmd: Cmd = k % 2 === 0 ? 'enable' : 'disable';
      return { cmd, ms: 200 + Math.floor(Math.random() * durations[cmd]) };
    });
    process.stdout.write(`resume-hosts: kills ${plan.map((p) => `${p.cmd}@${p.ms}ms`).join(', ')}\n`);
    for (const { cmd, ms } of plan) {
      const r = await killAndRerun(cmd, ms);
      if (/decided from the hosts/.test(r.stdout + r.stderr)) process.stdout.write(`resume-hosts: ${cmd}@${ms}ms resumed from the hosts\n`);
      await expectConverged(cmd);
    }
    if (plan.length % 2 === 1) {
      const back = await runTiseal(info, ['tls', 'disable', info.topologyFile, '--yes']);
      if (back.code !== 0) throw failed('disable', back);
    }
    await expectConverged('disable');
  });

  it('a killed disable resumes from a fresh state dir holding only the CA files, and from no state dir at all', async () => {
    const on = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes']);
    if (on.code !== 0) throw failed('enable', on);
    // Only ca.crt and ca.key copied to a new machine's state dir.
    const fresh = otherMachine('tiseal-fresh');
    fs.mkdirSync(path.dirname(tlsFiles(fresh).ca), { recursive: true, mode: 0o700 });
    for (const f of ['ca', 'caKey'] as const) fs.copyFileSync(tlsFiles(info)[f], tlsFiles(fresh)[f]);
    const ms = 200 + Math.floor(Math.random() * durations.disable);
    process.stdout.write(`resume-hosts: disable@${ms}ms, re-run from a state dir with only the CA\n`);
    await killAndRerun('disable', ms, fresh);
    await expectConverged('disable');

    // Back on TLS from the new machine (this machine's meta.json still says TLS on from before).
    const on2 = await runTiseal(fresh, ['tls', 'enable', info.topologyFile, '--yes']);
    if (on2.code !== 0) throw failed('enable', on2);
    // No CA here while the hosts are on TLS: enable names the CA by fingerprint and the way back; nothing changes.
    const other = otherMachine('tiseal-noca');
    const refused = await runTiseal(other, ['tls', 'enable', info.topologyFile, '--yes']);
    const fp = spawnSync('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', tlsFiles(info).ca], { encoding: 'utf8' }).stdout.trim().split('=')[1];
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`SHA-256 ${fp}`);
    expect(refused.stderr).toMatch(/its key is not on this machine[\s\S]*suggestion: copy ca\.crt and ca\.key [\s\S]*tiseal tls disable/);
    expectTlsCluster(info);
    const none = otherMachine('tiseal-none');
    const ms2 = 200 + Math.floor(Math.random() * durations.disable);
    process.stdout.write(`resume-hosts: disable@${ms2}ms killed, re-run with no state dir\n`);
    const killed = await runTiseal(info, ['tls', 'disable', info.topologyFile, '--yes'], { onSpawn: (c) => setTimeout(() => c.kill('SIGKILL'), ms2) });
    if (killed.signal !== 'SIGKILL' && killed.code !== 0) throw failed('disable failed on its own', killed);
    const again = await runTiseal(none, ['tls', 'disable', info.topologyFile, '--yes']);
    if (again.code !== 0) throw failed(`disable with no state dir after a kill at ${ms2} ms`, again);
    await expectConverged('disable');
  });
});
