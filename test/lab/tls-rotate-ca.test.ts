/**
 * `tls rotate --ca`: the cluster moves to a new CA with rolling restarts (trust both, reissue,
 * trust only the new one). Then a second move is SIGKILLed at a random moment, its journal and lock
 * deleted, and re-run: the phase is read from the hosts' CA bundles (the kill moment is printed to
 * replay). The hosts' bundles are read after each move; every port is checked with openssl once at
 * the end (lab time); each move's retired CA's client is refused right after that move.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { LabInfo } from '../../lab';
import { describeLab, ensureLab, sshOk } from './helpers';
import { expectClientRefused, expectEveryPortOnTls } from './expect-cluster';
import { clusterDir, clusterName, evictSchedulersNow, labOnTls, labTopology, logsInWindow, RunResult, runTiseal, tikvStoreIds, tlsFiles, watchEvictSchedulers } from './tiseal';
import { SqlProberProcess } from '../../bench/sql-prober-process';

jest.setTimeout(10 * 60_000);

const subjectOf = (pem: string) => spawnSync('openssl', ['x509', '-noout', '-subject'], { input: pem, encoding: 'utf8' }).stdout.trim();
/** Subject and SHA-256 fingerprint: two CAs made the same way differ in the key, whatever their names. */
const idOf = (pem: string) => spawnSync('openssl', ['x509', '-noout', '-subject', '-fingerprint', '-sha256'], { input: pem, encoding: 'utf8' }).stdout.trim().replace(/\n/g, ' ');

describeLab('tiseal tls rotate --ca on the lab', () => {
  let info: LabInfo;
  let dir = '';
  /** How long the first move took: bounds the kill moment of the second. */
  let moveMs = 0;

  /** No host's ca.crt holds `retired` any more (the ports are checked with openssl by expectEveryPortOnTls). */
  function expectNoHostTrusts(retired: string): void {
    for (const h of info.hosts) {
      const bundles = sshOk(info, h, 'sudo -n sh -c "cat /tidb-deploy/*/tls/ca.crt"');
      expect(bundles).not.toContain(retired.split('\n')[1]);
    }
  }

  /** tiseal's client certificate as it is now, kept aside as a client of the cluster would hold it. */
  function keepClient(name: string): { cert: string; key: string } {
    const kept = { cert: path.join(dir, `${name}.crt`), key: path.join(dir, `${name}.key`) };
    fs.copyFileSync(tlsFiles(info).cert, kept.cert);
    fs.copyFileSync(tlsFiles(info).key, kept.key);
    return kept;
  }

  const savedTiupHome = process.env.TIUP_HOME;
  let tiupRoot = '';
  let tiupDir = '';

  beforeAll(async () => {
    // Made here, not in the first test: the second, run alone, keeps its client files here too (never in the working directory).
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-oldca-'));
    // A TiUP that manages the cluster here (meta.yaml as TiUP writes it): its tls/ must follow the move.
    tiupRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-rotca-tiup-'));
    process.env.TIUP_HOME = tiupRoot; // runTiseal passes this process's environment on
    tiupDir = path.join(tiupRoot, 'storage', 'cluster', 'clusters', clusterName(await ensureLab()));
    fs.mkdirSync(path.join(tiupDir, 'backup'), { recursive: true, mode: 0o755 });
    fs.copyFileSync(path.join(__dirname, '..', 'tiup', 'fixtures', 'meta.yaml'), path.join(tiupDir, 'meta.yaml'));
    info = await labOnTls();
  }, 15 * 60_000);

  afterAll(() => {
    if (savedTiupHome === undefined) delete process.env.TIUP_HOME;
    else process.env.TIUP_HOME = savedTiupHome;
    for (const d of [dir, tiupRoot]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('moves every component to the new CA; no host trusts the old one and its client is refused', async () => {
    const oldCa = fs.readFileSync(tlsFiles(info).ca, 'utf8');
    // tiseal's client certificate from the old CA, kept aside as a client of the old cluster would hold it
    const old = keepClient('old');
    // An application on the lab's one TiDB throughout: the stores' rolling restarts evict their leaders
    // first, so no statement may fail with a TiDB error (PD/TiKV/region unavailable). TiDB's own two
    // rolling restarts refuse connections for a moment (one TiDB here): those are counted apart.
    const prober = new SqlProberProcess({ backends: ['10.77.0.14:4000'], workers: 2, pauseMs: 20, timeoutMs: 3000, keyPrefix: 'lab-rotca' });
    prober.start();
    await prober.answering(10);
    const stores = tikvStoreIds(info);
    expect(stores).toHaveLength(3);
    const t0 = Date.now();
    const evictions = watchEvictSchedulers(info);
    const r = await runTiseal(info, ['tls', 'rotate', info.topologyFile, '--ca', '--yes']);
    moveMs = Date.now() - t0;
    const evicted = await evictions.stop();
    await prober.answering(10).catch(() => undefined);
    const rep = await prober.stop();
    if (r.code !== 0) throw new Error(`rotate --ca failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);
    const failed = rep.records.filter((x) => !x.ok);
    const sqlErrors = failed.filter((x) => !/^no backend could run it/.test(x.error ?? ''));
    process.stdout.write(`sql prober, rotate --ca: ${rep.statements} statements, ${sqlErrors.length} failed with a TiDB error, ${failed.length - sqlErrors.length} refused while TiDB restarted\n`);
    const around = sqlErrors.length
      ? `\nlogs:\n${logsInWindow(info, labTopology(info).instances.filter((i) => ['pd', 'tikv', 'tidb'].includes(i.role)), sqlErrors[0].t0 - 6000, sqlErrors[0].t1 + 500, 250).join('\n')}`
      : '';
    expect(sqlErrors.map((x) => `${x.op} ${x.key} ${new Date(x.t0).toISOString()} ${x.error}`).join('\n') + around).toBe('');
    // PD itself had each of the 3 stores under evict-leader at some moment of the move (asked
    // while it ran), and none is left afterwards.
    expect([...evicted].filter((n) => n.startsWith('store ')).sort()).toEqual(stores.map((id) => `store ${id}`).sort());
    expect(evictSchedulersNow(info)).toEqual([]);

    const newCa = fs.readFileSync(tlsFiles(info).ca, 'utf8');
    expect(subjectOf(newCa)).not.toBe(subjectOf(oldCa));
    const retired = fs.readdirSync(clusterDir(info)).filter((d) => d.startsWith('tls-retired-'));
    expect(retired).toHaveLength(1);
    expect(fs.readFileSync(path.join(clusterDir(info), retired[0], 'ca.crt'), 'utf8')).toBe(oldCa);
    expect(fs.statSync(path.join(clusterDir(info), retired[0], 'ca.key')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(clusterDir(info), 'tls-next'))).toBe(false);

    // Every port checked with openssl once, after the second move (the next test): lab time.
    expectNoHostTrusts(oldCa);
    expect((await runTiseal(info, ['tls', 'status', info.topologyFile])).code).toBe(0);

    // Live, after the switch: the old CA's client certificate is refused where the new one is served.
    const f = tlsFiles(info);
    expectClientRefused(info, old, { cert: f.cert, key: f.key });
  });

  it('a second move SIGKILLed at a random moment, journal and lock deleted, converges when re-run with --yes: every port on the newest CA, cluster healthy', async () => {
    const before = fs.readFileSync(tlsFiles(info).ca, 'utf8');
    const old = keepClient('before-kill');
    // TISEAL_ROTATE_KILL_MS replays a printed kill moment.
    const ms = Number(process.env.TISEAL_ROTATE_KILL_MS ?? 300 + Math.floor(Math.random() * Math.max(1000, moveMs - 300)));
    process.stdout.write(`tls-rotate-ca: the second move (a first took ${moveMs} ms) is killed at ${ms} ms\n`);
    const killed = await runTiseal(info, ['tls', 'rotate', info.topologyFile, '--ca', '--yes'], { onSpawn: (c) => setTimeout(() => c.kill('SIGKILL'), ms) });
    const failed = (what: string, x: RunResult) => new Error(`${what} (exit ${x.code}, signal ${x.signal}):\n${x.stdout.slice(-3000)}\n${x.stderr}`);
    if (killed.signal !== 'SIGKILL' && killed.code !== 0) throw failed(`rotate --ca killed at ${ms} ms failed on its own`, killed);
    for (const f of ['journal.jsonl', 'lock']) fs.rmSync(path.join(clusterDir(info), f), { force: true });
    const t0 = Date.now();
    const again = await runTiseal(info, ['tls', 'rotate', info.topologyFile, '--ca', '--yes']);
    if (again.code !== 0) throw failed(`re-run of rotate --ca after a kill at ${ms} ms`, again);
    const t1 = Date.now();
    if (/decided from the hosts/.test(again.stdout)) process.stdout.write('tls-rotate-ca: the re-run continued the move (decided from the hosts)\n');

    // A kill after the move's switch leaves nothing to continue: the re-run is a move of its own. Either way a newer CA.
    expect(idOf(fs.readFileSync(tlsFiles(info).ca, 'utf8'))).not.toBe(idOf(before));
    expect(fs.existsSync(path.join(clusterDir(info), 'tls-next'))).toBe(false);
    // openssl on every TLS port, verified against the state dir's ca.crt: the newest CA alone. (The
    // whole-cluster check, expectTlsCluster, runs in tls.test.ts; here it cost CI two minutes.)
    expectNoHostTrusts(before);
    expectEveryPortOnTls(info);
    // Whatever the kill interrupted, no evict-leader scheduler is left behind (asked of PD), nor a marker.
    expect(evictSchedulersNow(info)).toEqual([]);
    for (const i of labTopology(info).instances.filter((x) => x.role === 'tikv')) {
      expect(sshOk(info, i.host, `sudo -n sh -c 'test -e ${i.deployDir}/tiseal-evict-leader && echo left || echo gone'`).trim()).toBe('gone');
    }
    const f = tlsFiles(info);
    // the client of the CA the killed move retired is refused (the first move's was, in the test above;
    // each refusal costs TiKV's 15 s s_client wait, so once each)
    expectClientRefused(info, old, { cert: f.cert, key: f.key });
    // TiUP's tls/ followed the move (its scale-out issues from the cluster CA).
    expect(fs.readFileSync(path.join(tiupDir, 'tls', 'ca.crt'), 'utf8')).toBe(fs.readFileSync(f.ca, 'utf8'));
    expect(fs.readFileSync(path.join(tiupDir, 'tls', 'client.crt'), 'utf8')).toBe(fs.readFileSync(f.cert, 'utf8'));
    process.stdout.write(`tls-rotate-ca: re-run ${t1 - t0} ms, checks ${Date.now() - t1} ms\n`);
  });
});
