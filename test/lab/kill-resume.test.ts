/**
 * A run killed at any moment (SIGKILL: no cleanup, as OOM or a closed terminal) never needs a
 * hand: the lock dies with the process, and the bare re-run (`--yes`, nothing else) resumes and
 * converges. The kill moments are random (printed, to replay a failure); the cluster is checked
 * with independent clients, then turned back to plaintext for the tests after this one.
 */
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab } from './helpers';
import { expectPlainCluster, expectTlsCluster } from './expect-cluster';
import { clusterDir, RunResult, runTiseal, tlsFiles } from './tiseal';
import * as fs from 'fs';

jest.setTimeout(20 * 60_000);

const KILLS = 2; // two in a row: a resumed run that is itself killed must resume too
/** Kill moments, ms after start: from preflight to the restarts and the PD scale-out. */
const MIN_MS = 500;
const MAX_MS = 20_000;

describeLab('SIGKILL at random moments, then a bare re-run resumes', () => {
  let info: LabInfo;
  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
  }, 15 * 60_000);

  it(`tls enable killed ${KILLS} times, then \`tls enable --yes\` converges without a hand; disable back`, async () => {
    const topo = info.topologyFile;
    const delays = Array.from({ length: KILLS }, () => MIN_MS + Math.floor(Math.random() * (MAX_MS - MIN_MS)));
    process.stdout.write(`kill-resume: SIGKILL after ${delays.join(', ')} ms\n`);
    const runs: RunResult[] = [];
    for (const ms of delays) {
      const r = await runTiseal(info, ['tls', 'enable', topo, '--yes'], { onSpawn: (child) => setTimeout(() => child.kill('SIGKILL'), ms) });
      runs.push(r);
      // never blocked by the lock of the run killed before
      expect(r.stderr).not.toMatch(/holds the lock|stale lock|rm .*\/lock/);
      if (r.signal !== 'SIGKILL' && r.code !== 0) throw new Error(`run killed at ${ms} ms failed on its own (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    }
    // the last killed run left its record in the lock file; nothing else stands in the way
    const final = await runTiseal(info, ['tls', 'enable', topo, '--yes']);
    if (final.code !== 0) throw new Error(`resume failed (${final.code}) after kills at ${delays.join(', ')} ms:\n${final.stdout.slice(-3000)}\n${final.stderr}`);
    expect(final.stderr).not.toMatch(/holds the lock|stale lock/);
    // A kill that came after its run had finished proves nothing: the first run cannot finish within
    // MAX_MS (a lab enable takes about 30 s, bench/RESULTS.md), so at least that one was killed.
    expect(`${runs.filter((r) => r.signal === 'SIGKILL').length} of ${runs.length} runs killed`).not.toMatch(/^0 of/);
    expect(runs[0].signal).toBe('SIGKILL');
    expect(final.stdout).toMatch(/Resuming the interrupted run|nothing to do/);
    expect(fs.existsSync(tlsFiles(info).ca)).toBe(true);
    expectTlsCluster(info);
    expect(JSON.parse(fs.readFileSync(`${clusterDir(info)}/meta.json`, 'utf8')).enableTls).toBe(true);

    const back = await runTiseal(info, ['tls', 'disable', topo, '--yes']);
    if (back.code !== 0) throw new Error(`disable failed (${back.code}):\n${back.stdout.slice(-3000)}\n${back.stderr}`);
    await expectPlainCluster(info);
  });
});
