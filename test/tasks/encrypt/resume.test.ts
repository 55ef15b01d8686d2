/**
 * `encrypt` resumed from the hosts: each store's state is read from its config, tiseal's key files,
 * its key dictionary and its unit; with no key on this machine the one the stores use is copied
 * from the hosts (never a new one, which would lock them out), and a rotation killed in its
 * promote is finished.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { masterKeyPath, previousKeyPath } from '../../../src/components/encryption';
import { FakePool } from '../../../src/ssh';
import type { TlsContext } from '../../../src/tasks/context';
import { localKeys, readStoresEncryption, recoverLocalKeys, storesMidChange } from '../../../src/tasks/encrypt';
import { parseTopology } from '../../../src/topology';
import type { Instance, Topology } from '../../../src/topology/types';
import { fakeTlsContext } from '../../support/deployed-pool';

const topology = (): Topology => parseTopology('global:\n  user: tidb\npd_servers:\n  - host: 10.0.0.1\ntikv_servers:\n  - host: 10.0.0.2\n  - host: 10.0.0.3\n', 'c.yaml');
const KEY_A = `${'a1'.repeat(32)}\n`;
const KEY_B = `${'b2'.repeat(32)}\n`;
const STARTED_S = 1_764_460_000; // when the units last started (s)

let stateDir: string;
beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-encres-'))));
afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

interface Store {
  method?: string;
  key?: string;
  previous?: string;
  dict?: boolean;
  /** config/keys changed this many seconds after the unit started (a restart owed) */
  changedAfter?: number;
  keyPath?: string;
  /** a tiseal encrypt run's backup dir, this many seconds after the unit started */
  runAfter?: number;
}

const tikvs = (t: Topology) => t.instances.filter((i) => i.role === 'tikv');
const config = (inst: Instance) => inst.configFiles.find((f) => f.endsWith('/tikv.toml'))!;

function hosts(t: Topology, stores: Store[]): FakePool {
  const pool = new FakePool();
  for (const [k, inst] of tikvs(t).entries()) {
    const s = stores[k];
    const h = pool.host(inst.host);
    const enc = s.method ? `[security.encryption]\ndata-encryption-method = "${s.method}"\n[security.encryption.master-key]\ntype = "file"\npath = "${s.keyPath ?? masterKeyPath(inst)}"\n` : '';
    h.addFile(config(inst), `log-level = "info"\n${enc}`, { owner: 'tidb' });
    if (s.key) h.addFile(masterKeyPath(inst), s.key, { owner: 'tidb', mode: 0o600 });
    if (s.previous) h.addFile(previousKeyPath(inst), s.previous, { owner: 'tidb', mode: 0o600 });
    h.onExec(/^find .* -name key\.dict/, () => (s.dict ? `${inst.dataDir}/key.dict\n` : ''))
      .onExec(/^systemctl show /, () => `Id=${inst.unit}\nLoadState=loaded\nActiveState=active\nSubState=running\nNRestarts=0\nActiveEnterTimestamp=@${STARTED_S}\nMainPID=7\n`)
      .onExec(/^stat -c %Y /, () => `${STARTED_S + (s.changedAfter ?? -100)}\n`)
      .onExec(/^for p in .*\/backup'?\/tiseal-encrypt-\*/, () => (s.runAfter === undefined ? '' : `${inst.deployDir}/backup/tiseal-encrypt-${(STARTED_S + s.runAfter) * 1000}\n`));
  }
  return pool;
}

const context = (t: Topology, pool: FakePool): TlsContext =>
  fakeTlsContext({ want: 'off', topology: t, pool, stateDir, cluster: 'c', runId: 'e1', pd: {} as TlsContext['pd'], flags: { keyType: 'rsa' } });

describe('the state of each store, read from its host', () => {
  it('config, key files, key dictionary, and whether a restart is owed', async () => {
    const t = topology();
    const ctx = context(t, hosts(t, [{ method: 'aes256-ctr', key: KEY_A, previous: KEY_B, dict: true, changedAfter: 30, runAfter: 20 }, { runAfter: -50 }]));
    const [a, b] = await readStoresEncryption(ctx);
    expect(a).toMatchObject({ method: 'aes256-ctr', masterKeyPath: masterKeyPath(a.inst), masterKey: KEY_A, previousKey: KEY_B, dict: true, pending: true, tisealSinceStart: true });
    expect(b).toMatchObject({ method: 'plaintext', masterKeyPath: undefined, masterKey: undefined, dict: false, pending: false, tisealSinceStart: false });
    expect(storesMidChange([a, b])).toBe(`tikv-20160.service on 10.0.0.2 did not restart since its encryption settings changed: converging (decided from the hosts)`);
    // Not an interrupted encrypt run: a plaintext store owing a restart, an encrypted one that restarted since,
    // or one changed (say, its key replaced by hand) after tiseal's last run had restarted it.
    expect(storesMidChange([{ ...b, pending: true, tisealSinceStart: true }, { ...a, pending: false }])).toBeUndefined();
    expect(storesMidChange([{ ...a, tisealSinceStart: false }])).toBeUndefined();
  });
});

describe('no master key on this machine', () => {
  it('copies the key every store uses from the hosts, never a new one', async () => {
    const t = topology();
    const ctx = context(t, hosts(t, [{ method: 'aes256-ctr', key: KEY_A, dict: true }, { method: 'aes256-ctr', key: KEY_A, dict: true }]));
    const stores = await readStoresEncryption(ctx);
    await expect(recoverLocalKeys(ctx, stores, true)).rejects.toThrow(/run the same command without --dry-run|the stores use one/);
    expect(fs.existsSync(localKeys(ctx).current)).toBe(false);
    const note = await recoverLocalKeys(ctx, stores, false);
    expect(note).toMatch(new RegExp(`the one all 2 stores use \\(SHA-256 [0-9a-f]{16}…, 10\\.0\\.0\\.2:${masterKeyPath(tikvs(t)[0])}\\) is now in .*decided from the hosts`));
    expect(fs.readFileSync(localKeys(ctx).current, 'utf8')).toBe(KEY_A);
    expect(fs.statSync(localKeys(ctx).current).mode & 0o777).toBe(0o600);
    expect(await recoverLocalKeys(ctx, stores, false)).toBeUndefined(); // a key here: nothing to recover
  });

  it('refuses stores that disagree, a key that is not one, and a key outside tiseal\'s path, naming the host file', async () => {
    const t = topology();
    const [s2, s3] = tikvs(t);
    const cases: Array<[Store[], string]> = [
      [[{ method: 'aes256-ctr', key: KEY_A }, { method: 'aes256-ctr', key: KEY_B }], `10.0.0.3:${masterKeyPath(s3)} differs from 10.0.0.2's`],
      [[{ method: 'aes256-ctr', key: 'nothex\n' }, { method: 'aes256-ctr', key: KEY_A }], `10.0.0.2:${masterKeyPath(s2)} is not 64 hex characters and a newline`],
      [[{ method: 'aes256-ctr', key: KEY_A }, { method: 'plaintext', dict: true }], `10.0.0.3:${masterKeyPath(s3)} is missing`],
      [[{ method: 'aes256-ctr', key: KEY_A, keyPath: '/etc/kms.key' }, { method: 'aes256-ctr', key: KEY_A }], `10.0.0.2:${config(s2)} names the master key /etc/kms.key, not tiseal's`],
    ];
    for (const [stores, message] of cases) {
      const ctx = context(t, hosts(t, stores));
      const e = await recoverLocalKeys(ctx, await readStoresEncryption(ctx), false).catch((x: Error & { suggestion?: string }) => x);
      expect((e as Error).message).toContain(message);
      expect((e as { suggestion?: string }).suggestion).toMatch(/copy master\.key from the machine that ran .* or give the key the stores use to `tiseal encrypt enable --master-key-file`; nothing was changed/);
      expect(fs.existsSync(localKeys(ctx).current)).toBe(false);
    }
  });

  it('enable --master-key-file: the operator\'s key, unless every store uses one other key', async () => {
    const t = topology();
    const same = context(t, hosts(t, [{ method: 'aes256-ctr', key: KEY_A, dict: true }, { method: 'aes256-ctr', key: KEY_A, dict: true }]));
    const stores = await readStoresEncryption(same);
    expect(await recoverLocalKeys(same, stores, false, KEY_A)).toBeUndefined(); // the key step stores the given key
    await expect(recoverLocalKeys(same, stores, false, KEY_B)).rejects.toThrow(/--master-key-file is not the master key all 2 stores use .*could not open their data/);
    const split = context(t, hosts(t, [{ method: 'aes256-ctr', key: KEY_A }, { method: 'aes256-ctr', key: KEY_B }]));
    expect(await recoverLocalKeys(split, await readStoresEncryption(split), false, KEY_B)).toBeUndefined();
    expect(fs.existsSync(localKeys(same).current)).toBe(false);
  });

  it('leaves a cluster that never used encryption to the command (a new key for enable)', async () => {
    const t = topology();
    const ctx = context(t, hosts(t, [{}, {}]));
    expect(await recoverLocalKeys(ctx, await readStoresEncryption(ctx), false)).toBeUndefined();
    expect(fs.existsSync(localKeys(ctx).current)).toBe(false);
  });

  it('finishes a rotation killed in its promote when every store uses the new key', async () => {
    const t = topology();
    const ctx = context(t, hosts(t, [{ method: 'aes256-ctr', key: KEY_B, dict: true }, { method: 'aes256-ctr', key: KEY_B, dict: true }]));
    const k = localKeys(ctx);
    fs.mkdirSync(path.dirname(k.next), { recursive: true });
    fs.writeFileSync(`${k.current}.retired-20261130T010000`, KEY_A, { mode: 0o600 });
    fs.writeFileSync(k.next, KEY_B, { mode: 0o600 });
    const note = await recoverLocalKeys(ctx, await readStoresEncryption(ctx), false);
    expect(note).toMatch(/a killed `encrypt rotate-key` had moved .* aside; every store's master.key is .*, so it is now the current key \(decided from the hosts\)/);
    expect(fs.readFileSync(k.current, 'utf8')).toBe(KEY_B);
    expect(fs.existsSync(k.next)).toBe(false);
  });
});
