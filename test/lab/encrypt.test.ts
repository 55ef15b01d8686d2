/**
 * `tiseal encrypt enable | rotate-key | disable` on the lab: the TiKV emulator remembers which master
 * key sealed its key dictionary, so a store restarted with the wrong key stays Down, like TiKV.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { labReset, LabInfo } from '../../lab';
import type { TomlTable } from '../../src/components';
import { readEncryption } from '../../src/components/encryption';
import { describeLab, ensureLab, sshOk } from './helpers';
import { clusterDir, pdJson, runTiseal } from './tiseal';

jest.setTimeout(10 * 60_000);

type Stores = { stores: Array<{ store: { address: string; state_name: string } }> };
const STORE_HOSTS = ['10.77.0.11', '10.77.0.12', '10.77.0.13'];

function expectStoresUp(info: LabInfo): void {
  const stores = pdJson<Stores>(info, '10.77.0.11', '/pd/api/v1/stores', 'http');
  expect(stores.stores.length).toBe(4);
  for (const s of stores.stores) expect(`${s.store.address} ${s.store.state_name}`).toMatch(/ Up$/);
}

describeLab('tiseal encrypt on the lab', () => {
  let info: LabInfo;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
  }, 15 * 60_000);

  it('enables encryption with a rolling restart: sections written, key files 0600, stores Up', async () => {
    const r = await runTiseal(info, ['encrypt', 'enable', info.topologyFile, '--yes']);
    if (r.code !== 0) throw new Error(`encrypt enable failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    for (const h of STORE_HOSTS) {
      const toml = sshOk(info, h, 'cat /tidb-deploy/tikv-20160/conf/tikv.toml');
      const enc = readEncryption(TOML.parse(toml) as TomlTable);
      expect(enc).toEqual({ method: 'aes256-ctr', masterKey: '/tidb-deploy/tikv-20160/encryption/master.key', previousMasterKey: undefined });
      expect(sshOk(info, h, 'sudo -n stat -c "%a %U %s" /tidb-deploy/tikv-20160/encryption/master.key').trim()).toBe('600 tidb 65');
      expect(sshOk(info, h, 'grep -c "key dictionary (method aes256-ctr" /tidb-deploy/tikv-20160/log/tikv.log || true').trim()).not.toBe('0');
    }
    expect(sshOk(info, '10.77.0.15', 'cat /tidb-deploy/tiflash-9000/conf/tiflash-learner.toml')).toMatch(/data-encryption-method = "aes256-ctr"/);
    expect(fs.statSync(`${clusterDir(info)}/encryption/master.key`).mode & 0o777).toBe(0o600);
    expectStoresUp(info);
  });

  it('rotates the master key: stores stay Up and the old key is forgotten', async () => {
    const before = fs.readFileSync(`${clusterDir(info)}/encryption/master.key`, 'utf8');
    const r = await runTiseal(info, ['encrypt', 'rotate-key', info.topologyFile, '--yes']);
    if (r.code !== 0) throw new Error(`rotate-key failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    const after = fs.readFileSync(`${clusterDir(info)}/encryption/master.key`, 'utf8');
    expect(after).not.toBe(before);
    for (const h of STORE_HOSTS) {
      expect(sshOk(info, h, 'sudo -n cat /tidb-deploy/tikv-20160/encryption/master.key')).toBe(after);
      expect(sshOk(info, h, 'sudo -n ls /tidb-deploy/tikv-20160/encryption').trim()).toBe('master.key');
      expect(sshOk(info, h, 'cat /tidb-deploy/tikv-20160/conf/tikv.toml')).not.toMatch(/previous-master-key/);
    }
    expectStoresUp(info);
  });

  it('catches a wrong rotation order on one store and reports it; enable then repairs it', async () => {
    // By hand, in the wrong order: a new master key on one store with the old one already gone.
    const wrong = `${'ab'.repeat(32)}\n`;
    sshOk(info, '10.77.0.13', `printf '${wrong.trim()}\\n' | sudo -n tee /tidb-deploy/tikv-20160/encryption/master.key >/dev/null && sudo -n systemctl restart tikv-20160.service`);
    await new Promise((r) => setTimeout(r, 3000));
    expect(sshOk(info, '10.77.0.13', 'tail -n 20 /tidb-deploy/tikv-20160/log/tikv.log')).toMatch(/master key/i);
    const r = await runTiseal(info, ['encrypt', 'rotate-key', info.topologyFile, '--yes']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/10\.77\.0\.13 tikv-20160\.service/);
    // tiseal holds the right key: converging puts it back, and the store comes back Up
    const fix = await runTiseal(info, ['encrypt', 'enable', info.topologyFile, '--yes']);
    if (fix.code !== 0) throw new Error(`repair failed (${fix.code}):\n${fix.stdout.slice(-2000)}\n${fix.stderr}`);
    expectStoresUp(info);
  });

  it('disables encryption for new data (method plaintext, master key kept), stores Up', async () => {
    const r = await runTiseal(info, ['encrypt', 'disable', info.topologyFile, '--yes']);
    if (r.code !== 0) throw new Error(`encrypt disable failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    for (const h of STORE_HOSTS) {
      const enc = readEncryption(TOML.parse(sshOk(info, h, 'cat /tidb-deploy/tikv-20160/conf/tikv.toml')) as TomlTable);
      expect(enc.method).toBe('plaintext');
      expect(enc.masterKey).toBe('/tidb-deploy/tikv-20160/encryption/master.key');
    }
    expectStoresUp(info);
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
