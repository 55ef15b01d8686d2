import * as fs from 'fs';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { applyTlsKeys, readTlsKeys, securityKeyNames, TomlTable } from '../../src/components/security-keys';
import type { Role } from '../../src/topology/types';

const paths = { dir: '/d/tls', ca: '/d/tls/ca.crt', cert: '/d/tls/x.crt', key: '/d/tls/x.pem' };
const upstream = '/work/shared/reference/upstream/config-templates';
const upstreamDir = fs.existsSync(upstream) ? upstream : path.join(__dirname, '..', '..', '..', 'shared', 'reference', 'upstream', 'config-templates');

describe('applyTlsKeys / readTlsKeys', () => {
  const table: Array<[Role, string, string, string]> = [
    ['pd', 'pd.toml', 'security', 'cacert-path'],
    ['tikv', 'tikv.toml', 'security', 'ca-path'],
    ['tidb', 'tidb.toml', 'security', 'cluster-ssl-ca'],
    ['tiflash', 'tiflash.toml', 'security', 'ca_path'],
    ['pump', 'pump.toml', 'security', 'ssl-ca'],
  ];
  // TiUP renders tiflash-learner.toml with empty paths when TLS is off (pkg/cluster/spec/tiflash.go):
  // disable gives those back, so a TiUP-deployed learner config round-trips exactly.
  table.push(['tiflash', 'tiflash-learner.toml', 'security', 'ca-path']);
  const offValues = (file: string): TomlTable => (file === 'tiflash-learner.toml' ? { 'ca-path': '', 'cert-path': '', 'key-path': '' } : {});
  it.each(table)('%s %s: on then off restores the original document', (role, file, section, caKey) => {
    const original: TomlTable = { log: { level: 'info' }, [section]: { ...offValues(file), 'redact-info-log': true } };
    const doc = JSON.parse(JSON.stringify(original));
    expect(applyTlsKeys(role, file, doc, { paths, allowedCn: ['tidb', 'tiseal'] })).toBe(true);
    expect((doc[section] as TomlTable)[caKey]).toBe('/d/tls/ca.crt');
    expect(readTlsKeys(role, file, doc).state).toBe('on');
    // idempotent
    expect(applyTlsKeys(role, file, doc, { paths, allowedCn: ['tidb', 'tiseal'] })).toBe(false);
    // round trip through TOML text
    const reparsed = TOML.parse(TOML.stringify(doc as TOML.JsonMap)) as TomlTable;
    expect(readTlsKeys(role, file, reparsed).state).toBe('on');
    expect(applyTlsKeys(role, file, doc, null)).toBe(true);
    expect(doc).toEqual(original);
    expect(readTlsKeys(role, file, doc).state).toBe('off');
  });
  it('removes a [security] table it emptied', () => {
    const doc: TomlTable = { log: { level: 'info' } };
    applyTlsKeys('tikv', 'tikv.toml', doc, { paths });
    applyTlsKeys('tikv', 'tikv.toml', doc, null);
    expect(doc).toEqual({ log: { level: 'info' } });
  });
  it('reports a partial configuration (what TiKV refuses to start with)', () => {
    expect(readTlsKeys('tikv', 'tikv.toml', { security: { 'ca-path': '/x' } }).state).toBe('partial');
  });
  it('every key tiseal writes exists in the upstream config templates', () => {
    const files: Array<[Role, string, string]> = [
      ['pd', 'pd.toml', 'pd-config.toml'],
      ['tikv', 'tikv.toml', 'tikv-config-template.toml'],
      ['tiflash', 'tiflash.toml', 'tiflash-config-template.toml'],
    ];
    for (const [role, file, tpl] of files) {
      const text = fs.readFileSync(path.join(upstreamDir, tpl), 'utf8');
      const k = securityKeyNames(role, file)!;
      for (const key of [k.ca, k.cert, k.key]) expect(text).toMatch(new RegExp(`^#?\\s*${key}\\s*=`, 'm'));
    }
  });
});
