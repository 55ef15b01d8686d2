/**
 * `tiseal encrypt enable | rotate-key | disable` on the lab: the TiKV emulator remembers which master
 * key sealed its key dictionary, so a store restarted with the wrong key stays Down, like TiKV.
 * Checked on the hosts: the dictionary each store keeps opens with the key tiseal says is current
 * (test/lab/encryption-state.ts), and systemd's stop times with each store's "ready" log line show one
 * store restarting at a time.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { labReset, LabInfo } from '../../lab';
import type { TomlTable } from '../../src/components';
import { readEncryption } from '../../src/components/encryption';
import { describeLab, ensureLab, sshOk, waitUntil } from './helpers';
import { readKeyDict, sealedBy } from './encryption-state';
import { expectRunningCluster } from './expect-cluster';
import { clusterDir, expectRestartedOneAtATime, labTopology, logsInWindow, pdJson, runTiseal, storeRestartWindows, type RunResult } from './tiseal';
import type { SqlProbeReport } from '../../bench/sql-prober';
import { SqlProberProcess } from '../../bench/sql-prober-process';

jest.setTimeout(10 * 60_000);

const STORE_HOSTS = ['10.77.0.11', '10.77.0.12', '10.77.0.13'];
const TIDB = '10.77.0.14';
const PD = '10.77.0.11'; // a PD member (PD runs on the three store hosts)

const stores = (info: LabInfo) => labTopology(info).instances.filter((i) => i.role === 'tikv' || i.role === 'tiflash');

/** Run tiseal and prove it restarted every store, one at a time: no two [stop, ready again] windows overlap. */
async function expectRollingRestart(info: LabInfo, args: string[]): Promise<RunResult> {
  const since = Date.now();
  const r = await runTiseal(info, args);
  if (r.code !== 0) throw new Error(`${args.join(' ')} failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
  expectRestartedOneAtATime(since, storeRestartWindows(info, stores(info)));
  return r;
}

/** Every store's key dictionary opens with `key` (and not with `not`), and records `method` for new data. */
function expectDictsSealed(info: LabInfo, key: string, method: string, not?: string): void {
  for (const i of stores(info)) {
    const d = readKeyDict(info, i.host, i.dataDir!);
    expect(`${i.id}@${i.host} ${d.data_method} sealed by current key: ${sealedBy(d, key)}`).toBe(`${i.id}@${i.host} ${method} sealed by current key: true`);
    if (not) expect(`${i.id}@${i.host} opens with the old key: ${sealedBy(d, not)}`).toBe(`${i.id}@${i.host} opens with the old key: false`);
  }
}

describeLab('tiseal encrypt on the lab', () => {
  let info: LabInfo;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
  }, 15 * 60_000);

  it('enables encryption with a rolling restart: leaders evicted first (no failed SQL statement), sections written, key files 0600, stores Up', async () => {
    // An application on TiDB throughout: each store's leaders move away before it restarts (PD's
    // evict-leader scheduler, as TiUP), so no region waits for an election.
    const prober = new SqlProberProcess({ backends: [`${TIDB}:4000`], workers: 2, pauseMs: 20, timeoutMs: 3000, keyPrefix: 'lab-encrypt' });
    let r: RunResult;
    let rep: SqlProbeReport;
    prober.start();
    try {
      await prober.answering(20);
      r = await expectRollingRestart(info, ['encrypt', 'enable', info.topologyFile, '--yes']);
    } finally {
      rep = await prober.stop();
    }
    const failed = rep.records.filter((x) => !x.ok).slice(0, 5);
    process.stdout.write(`sql prober, encrypt enable: ${rep.statements} statements, ${rep.failed} failed\n`);
    // On a failure: when each statement ran against each store's restart, and what tiseal said.
    const iso = (ms: number) => new Date(ms).toISOString().slice(11, 23);
    const context = failed.length
      ? ` restarts: ${storeRestartWindows(info, stores(info)).map((w) => `${w.id} ${iso(w.exitAt)}-${iso(w.readyAt)}`).join(', ')}; failed at ${failed.map((x) => `${iso(x.t0)}-${iso(x.t1)}`).join(', ')}; tiseal: ${r.stdout.split('\n').filter((l) => /evict|leader/.test(l)).join(' | ')}; logs:\n${logsInWindow(info, labTopology(info).instances.filter((i) => ['pd', 'tikv', 'tidb', 'tiflash'].includes(i.role)), failed[0].t0 - 1000, failed[0].t1 + 500).join('\n')}`
      : '';
    expect(`${rep.failed} failed ${JSON.stringify(failed)}${context}`).toBe('0 failed []');
    expect(rep.statements).toBeGreaterThan(100);
    expect(r.stdout.match(/leader\(s\) moved off store \d+/g)).toHaveLength(3); // each TiKV; TiFlash leads no region
    // Every scheduler tiseal added is gone, and so are its markers on the store hosts.
    expect(pdJson<string[]>(info, PD, '/pd/api/v1/schedulers', 'http').filter((n) => n.startsWith('evict-leader'))).toEqual([]);
    for (const i of stores(info)) expect(sshOk(info, i.host, `sudo -n sh -c 'test -e ${i.deployDir}/tiseal-evict-leader && echo left || echo gone'`).trim()).toBe('gone');
    for (const h of STORE_HOSTS) {
      const toml = sshOk(info, h, 'cat /tidb-deploy/tikv-20160/conf/tikv.toml');
      const enc = readEncryption(TOML.parse(toml) as TomlTable);
      expect(enc).toEqual({ method: 'aes256-ctr', masterKey: '/tidb-deploy/tikv-20160/encryption/master.key', previousMasterKey: undefined });
      expect(sshOk(info, h, 'sudo -n stat -c "%a %U %s" /tidb-deploy/tikv-20160/encryption/master.key').trim()).toBe('600 tidb 65');
    }
    expect(sshOk(info, '10.77.0.15', 'cat /tidb-deploy/tiflash-9000/conf/tiflash-learner.toml')).toMatch(/data-encryption-method = "aes256-ctr"/);
    expect(fs.statSync(`${clusterDir(info)}/encryption/master.key`).mode & 0o777).toBe(0o600);
    expectDictsSealed(info, fs.readFileSync(`${clusterDir(info)}/encryption/master.key`, 'utf8'), 'aes256-ctr');
    expectRunningCluster(info, 'http');
  });

  it('from a machine without the key, enable takes the one the stores use from the hosts: no new key, nothing restarted', async () => {
    const key = fs.readFileSync(`${clusterDir(info)}/encryption/master.key`, 'utf8');
    const fresh = { ...info, stateDir: fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-enc-fresh-')) };
    try {
      const since = Date.now();
      const r = await runTiseal(fresh, ['encrypt', 'enable', info.topologyFile, '--yes']);
      if (r.code !== 0) throw new Error(`enable from a fresh state dir failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
      expect(r.stdout).toMatch(new RegExp(`the one all ${stores(info).length} stores use .* is now in .*decided from the hosts`));
      expect(fs.readFileSync(`${clusterDir(fresh)}/encryption/master.key`, 'utf8')).toBe(key);
      expect(storeRestartWindows(info, stores(info)).filter((w) => w.exitAt > since).map((w) => w.id)).toEqual([]);
      expectDictsSealed(info, key, 'aes256-ctr');
    } finally {
      fs.rmSync(fresh.stateDir, { recursive: true, force: true });
    }
  });

  it('rotates the master key: stores stay Up and the old key is forgotten', async () => {
    const before = fs.readFileSync(`${clusterDir(info)}/encryption/master.key`, 'utf8');
    await expectRollingRestart(info, ['encrypt', 'rotate-key', info.topologyFile, '--yes']);
    const after = fs.readFileSync(`${clusterDir(info)}/encryption/master.key`, 'utf8');
    expect(after).not.toBe(before);
    for (const h of STORE_HOSTS) {
      expect(sshOk(info, h, 'sudo -n cat /tidb-deploy/tikv-20160/encryption/master.key')).toBe(after);
      expect(sshOk(info, h, 'sudo -n ls /tidb-deploy/tikv-20160/encryption').trim()).toBe('master.key');
      expect(sshOk(info, h, 'cat /tidb-deploy/tikv-20160/conf/tikv.toml')).not.toMatch(/previous-master-key/);
    }
    expectDictsSealed(info, after, 'aes256-ctr', before);
    expectRunningCluster(info, 'http');
  });

  it('catches a wrong rotation order on one store and reports it; enable then repairs it', async () => {
    // By hand, in the wrong order: a new master key on one store with the old one already gone.
    const wrong = `${'ab'.repeat(32)}\n`;
    sshOk(info, '10.77.0.13', `printf '${wrong.trim()}\\n' | sudo -n tee /tidb-deploy/tikv-20160/encryption/master.key >/dev/null && sudo -n systemctl restart tikv-20160.service`);
    await waitUntil('the store to refuse the wrong key', 30_000, () => /Both master key failed/.test(sshOk(info, '10.77.0.13', 'tail -n 20 /tidb-deploy/tikv-20160/log/tikv.log')) || undefined);
    const r = await runTiseal(info, ['encrypt', 'rotate-key', info.topologyFile, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/10\.77\.0\.13 tikv-20160\.service/);
    // tiseal holds the right key: converging puts it back, and the store comes back Up
    const fix = await runTiseal(info, ['encrypt', 'enable', info.topologyFile, '--yes']);
    if (fix.code !== 0) throw new Error(`repair failed (${fix.code}):\n${fix.stdout.slice(-2000)}\n${fix.stderr}`);
    expectDictsSealed(info, fs.readFileSync(`${clusterDir(info)}/encryption/master.key`, 'utf8'), 'aes256-ctr', wrong);
    expectRunningCluster(info, 'http');
  });

  it('disables encryption for new data (method plaintext, master key kept), stores Up; a run SIGKILLed while a store is evicted leaves no scheduler behind once re-run', async () => {
    // Killed while PD's evict-leader scheduler for some store exists (PD polled from here, async),
    // journal and lock deleted: the re-run finds the scheduler by its marker on the store's host.
    let seen = '';
    const killed = await runTiseal(info, ['encrypt', 'disable', info.topologyFile, '--yes'], {
      onSpawn: (c) => {
        const poll = setInterval(() => {
          fetch(`http://${PD}:2379/pd/api/v1/schedulers`)
            .then((res) => res.json() as Promise<string[]>)
            .then((names) => {
              const ev = names.find((n) => n.startsWith('evict-leader'));
              if (ev && !seen) {
                seen = ev;
                c.kill('SIGKILL');
              }
            })
            .catch(() => undefined);
        }, 50);
        c.once('exit', () => clearInterval(poll));
      },
    });
    if (!seen) throw new Error(`encrypt disable ended (${killed.code}) before any evict-leader scheduler was seen:\n${killed.stdout.slice(-2000)}`);
    expect(killed.signal).toBe('SIGKILL');
    expect(pdJson<string[]>(info, PD, '/pd/api/v1/schedulers', 'http')).toContain(seen); // the kill left it
    for (const f of ['journal.jsonl', 'lock']) fs.rmSync(path.join(clusterDir(info), f), { force: true });
    const r = await runTiseal(info, ['encrypt', 'disable', info.topologyFile, '--yes']);
    if (r.code !== 0) throw new Error(`re-run after the kill failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    expect(pdJson<string[]>(info, PD, '/pd/api/v1/schedulers', 'http').filter((n) => n.startsWith('evict-leader'))).toEqual([]);
    for (const i of stores(info)) expect(sshOk(info, i.host, `sudo -n sh -c 'test -e ${i.deployDir}/tiseal-evict-leader && echo left || echo gone'`).trim()).toBe('gone');
    process.stdout.write(`encrypt: disable killed while ${seen} existed; the re-run removed it\n`);
    for (const h of STORE_HOSTS) {
      const enc = readEncryption(TOML.parse(sshOk(info, h, 'cat /tidb-deploy/tikv-20160/conf/tikv.toml')) as TomlTable);
      expect(enc.method).toBe('plaintext');
      expect(enc.masterKey).toBe('/tidb-deploy/tikv-20160/encryption/master.key');
    }
    expectDictsSealed(info, fs.readFileSync(`${clusterDir(info)}/encryption/master.key`, 'utf8'), 'plaintext');
    expectRunningCluster(info, 'http');
  });

  it('refuses a v3.x cluster (cipher-file era) before changing anything', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-v3-'));
    try {
      const topo = path.join(dir, 'old.yaml');
      fs.writeFileSync(topo, fs.readFileSync(info.topologyFile, 'utf8') + '\ncomponent_versions:\n  tikv: v3.0.20\n');
      const r = await runTiseal(info, ['encrypt', 'enable', topo, '--yes']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/cipher-file/);
      expect(fs.existsSync(path.join(info.stateDir, 'clusters', 'old', 'encryption'))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
