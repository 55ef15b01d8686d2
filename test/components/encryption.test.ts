import * as fs from 'fs';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { applyEncryption, isMasterKey, readEncryption } from '../../src/components/encryption';
import type { TomlTable } from '../../src/components';
import { newMasterKey } from '../../src/tasks/encrypt';

const upstream = fs.existsSync('/work/shared/reference/upstream/config-templates') ? '/work/shared/reference/upstream/config-templates' : path.join(__dirname, '..', '..', '..', 'shared', 'reference', 'upstream', 'config-templates');

describe('encryption at rest config', () => {
  it('writes [security.encryption] with file master keys, round-trips through TOML, and drops the previous key', () => {
    const doc: TomlTable = { storage: { 'reserve-space': '0MB' }, security: { 'ca-path': '/t/ca.crt' } };
    expect(applyEncryption(doc, { method: 'aes256-ctr', masterKey: '/d/encryption/master.key', previousMasterKey: '/d/encryption/previous.key' })).toBe(true);
    const text = TOML.stringify(doc as TOML.JsonMap);
    expect(text).toMatch(/\[security\.encryption\]\s*\n\s*data-encryption-method = "aes256-ctr"/);
    const back = readEncryption(TOML.parse(text) as TomlTable);
    expect(back).toEqual({ method: 'aes256-ctr', masterKey: '/d/encryption/master.key', previousMasterKey: '/d/encryption/previous.key' });
    expect((doc.security as TomlTable)['ca-path']).toBe('/t/ca.crt');
    expect(applyEncryption(doc, { method: 'aes256-ctr', masterKey: '/d/encryption/master.key' })).toBe(true);
    expect(readEncryption(doc).previousMasterKey).toBeUndefined();
    expect(applyEncryption(doc, { method: 'aes256-ctr', masterKey: '/d/encryption/master.key' })).toBe(false);
  });
  it('uses keys that exist in the upstream TiKV config template', () => {
    const tpl = fs.readFileSync(path.join(upstream, 'tikv-config-template.toml'), 'utf8');
    expect(tpl).toMatch(/^\[security\.encryption\]/m);
    expect(tpl).toMatch(/^#\s*data-encryption-method = /m);
    expect(tpl).toMatch(/\[security\.encryption\.master-key\]/);
    expect(tpl).toMatch(/\[security\.encryption\.previous-master-key\]/);
  });
  it('master keys are 64 hex characters and a newline', () => {
    const k = newMasterKey();
    expect(k).toHaveLength(65);
    expect(isMasterKey(k)).toBe(true);
    expect(isMasterKey(k.trim())).toBe(false);
    expect(isMasterKey(`${k.trim()}\n\n`)).toBe(false);
    expect(isMasterKey(`${'g'.repeat(64)}\n`)).toBe(false);
    expect(newMasterKey()).not.toBe(k);
  });
});
