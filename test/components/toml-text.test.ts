import * as fs from 'fs';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { rewriteTlsConfig } from '../../src/components/security-keys';
import { editTomlText, TomlEditError } from '../../src/components/toml-text';
import { mergeToToml } from '../../src/render/toml';
import type { Instance } from '../../src/topology/types';

// Golden tests: tiseal owns the TLS keys and nothing else; every other byte of a config survives.
const upstream = '/work/shared/reference/upstream/config-templates';
const dir = fs.existsSync(upstream) ? upstream : path.join(__dirname, '..', '..', '..', 'shared', 'reference', 'upstream', 'config-templates');
const paths = { dir: '/d/tls', ca: '/d/tls/ca.crt', cert: '/d/tls/x.crt', key: '/d/tls/x.pem' };
const inst = (role: Instance['role'], ports: Record<string, number> = {}): Instance => ({ role, host: '10.0.0.1', ports } as unknown as Instance);

/** An upstream template with a few keys switched on, including floats written as `5.0`. */
function operatorFile(name: string, edits: Array<[string, string]>): string {
  let text = fs.readFileSync(path.join(dir, name), 'utf8');
  for (const [from, to] of edits) {
    expect(text).toContain(from);
    text = text.replace(from, to);
  }
  return text;
}

describe('rewriteTlsConfig keeps every line it does not own', () => {
  const cases: Array<[Instance['role'], string, string, Array<[string, string]>, string[]]> = [
    ['pd', 'pd.toml', 'pd-config.toml', [['# tolerant-size-ratio = 0.0', 'tolerant-size-ratio = 5.0  # keep me']],
      ['cacert-path = "/d/tls/ca.crt"', 'cert-path = "/d/tls/x.crt"', 'key-path = "/d/tls/x.pem"', 'cert-allowed-cn = ["pd", "tiseal"]']],
    ['tikv', 'tikv.toml', 'tikv-config-template.toml', [['# cert-allowed-san = []', 'cert-allowed-san = []']],
      ['ca-path = "/d/tls/ca.crt"', 'cert-path = "/d/tls/x.crt"', 'key-path = "/d/tls/x.pem"', 'cert-allowed-cn = ["pd", "tiseal"]']],
    ['tiflash', 'tiflash.toml', 'tiflash-config-template.toml', [['# redact_info_log = false', 'redact_info_log = false']],
      ['ca_path = "/d/tls/ca.crt"', 'cert_path = "/d/tls/x.crt"', 'key_path = "/d/tls/x.pem"', 'cert_allowed_cn = ["pd", "tiseal"]']],
  ];
  it.each(cases)('%s %s from the upstream template: only the TLS lines are added, disable gives the file back', (role, file, template, edits, added) => {
    const text = operatorFile(template, edits);
    const on = rewriteTlsConfig(inst(role), `/d/conf/${file}`, text, { paths, allowedCn: ['pd', 'tiseal'] }, 'v8.5.1');
    const before = text.split('\n');
    const after = on.split('\n');
    // The lines after the last existing key of [security] (or its header) are the added ones, in order.
    const at = after.indexOf(added[0]);
    expect(at).toBeGreaterThan(0);
    expect(after.slice(at, at + added.length)).toEqual(added);
    expect([...after.slice(0, at), ...after.slice(at + added.length)]).toEqual(before);
    expect(rewriteTlsConfig(inst(role), `/d/conf/${file}`, on, { paths, allowedCn: ['pd', 'tiseal'] }, 'v8.5.1')).toBe(on);
    expect(rewriteTlsConfig(inst(role), `/d/conf/${file}`, on, null, 'v8.5.1')).toBe(text);
  });

  it('PD: `5.0` stays `5.0` (PD decodes with a BurntSushi/toml that refuses an integer for a float)', () => {
    const text = '# mine\n[schedule]\ntolerant-size-ratio = 5.0\nleader-schedule-limit = 4\n\n[security]\n# keys below\nredact-info-log = true\n';
    const on = rewriteTlsConfig(inst('pd'), '/d/conf/pd.toml', text, { paths }, 'v8.5.1');
    expect(on).toBe('# mine\n[schedule]\ntolerant-size-ratio = 5.0\nleader-schedule-limit = 4\n\n[security]\n# keys below\nredact-info-log = true\n' +
      'cacert-path = "/d/tls/ca.crt"\ncert-path = "/d/tls/x.crt"\nkey-path = "/d/tls/x.pem"\n');
    expect(rewriteTlsConfig(inst('pd'), '/d/conf/pd.toml', on, null, 'v8.5.1')).toBe(text);
  });

  it('a TiUP-generated file without [security]: the table is appended, and removed again', () => {
    const text = mergeToToml('tikv', { 'server.grpc-concurrency': 4, 'raftstore.capacity': '10GB' });
    const on = rewriteTlsConfig(inst('tikv'), '/d/conf/tikv.toml', text, { paths }, 'v8.5.1');
    expect(on).toBe(`${text}\n[security]\nca-path = "/d/tls/ca.crt"\ncert-path = "/d/tls/x.crt"\nkey-path = "/d/tls/x.pem"\n`);
    expect(rewriteTlsConfig(inst('tikv'), '/d/conf/tikv.toml', on, null, 'v8.5.1')).toBe(text);
  });

  it('values already set are replaced in place; trailing comments and spacing stay', () => {
    const text = '[security]\nca-path   =  "/old/ca.pem"   # old CA\ncert-path = "/old/c.pem"\nkey-path = "/old/k.pem"\ncert-allowed-cn = [\n  "a", # first\n  "b",\n]\n[log]\nlevel = "info"\n';
    const on = rewriteTlsConfig(inst('tikv'), '/d/conf/tikv.toml', text, { paths, allowedCn: ['tiseal'] }, 'v8.5.1');
    expect(on).toBe('[security]\nca-path   =  "/d/tls/ca.crt"   # old CA\ncert-path = "/d/tls/x.crt"\nkey-path = "/d/tls/x.pem"\ncert-allowed-cn = ["tiseal"]\n[log]\nlevel = "info"\n');
  });

  it('dotted keys of [security] written in the root table are edited where they are', () => {
    const text = 'security.ca-path = "/old/ca"\nsecurity.cert-path = "/old/c"\n\n[log]\nlevel = "info"\n';
    const on = rewriteTlsConfig(inst('tikv'), '/d/conf/tikv.toml', text, { paths }, 'v8.5.1');
    expect(on).toBe('security.ca-path = "/d/tls/ca.crt"\nsecurity.cert-path = "/d/tls/x.crt"\nsecurity.key-path = "/d/tls/x.pem"\n\n[log]\nlevel = "info"\n');
  });

  it('a key inside an inline table is refused with the file named and a suggestion, nothing rewritten', () => {
    const text = 'security = { ca-path = "/old/ca" }\n';
    expect(() => rewriteTlsConfig(inst('tikv'), '/d/conf/tikv.toml', text, { paths }, 'v8.5.1')).toThrow(TomlEditError);
    expect(() => rewriteTlsConfig(inst('tikv'), '/d/conf/tikv.toml', text, { paths }, 'v8.5.1')).toThrow(/10\.0\.0\.1:\/d\/conf\/tikv\.toml/);
    try {
      rewriteTlsConfig(inst('tikv'), '/d/conf/tikv.toml', text, { paths }, 'v8.5.1');
    } catch (e) {
      expect((e as TomlEditError).suggestion).toMatch(/plain `key = value` line/);
    }
  });

  it('editTomlText: multi-line strings and quoted keys are skipped intact', () => {
    const text = 'a = """\n[security]\nca-path = "x"\n"""\n"quoted.key" = 1\n[t]\nk = 1\n';
    const doc = TOML.parse(text) as Record<string, unknown>;
    (doc.t as Record<string, unknown>).k = 2;
    expect(editTomlText(text, doc)).toBe(text.replace('k = 1', 'k = 2'));
  });
});

describe('TiFlash http_port ↔ https_port (before v7.1)', () => {
  // TiUP pkg/cluster/spec/tiflash.go: `if enableTLS { httpPort = "https_port: %d" } else { "http_port: %d" }`
  // for versions where !tidbver.TiFlashNotNeedHTTPPortConfig (below v7.1.0).
  const tiup = mergeToToml('tiflash', { listen_host: '0.0.0.0', tcp_port: 9000, http_port: 8123, 'status.metrics_port': 8234 });
  const ti = inst('tiflash', { http_port: 8123 });

  it('enable at v6.5 renames http_port to https_port on its own line; disable renames it back', () => {
    const on = rewriteTlsConfig(ti, '/d/conf/tiflash.toml', tiup, { paths }, 'v6.5.0');
    expect(on).toContain('https_port = 8123\n');
    expect(on).not.toMatch(/^http_port/m);
    expect(on.split('\n').indexOf('https_port = 8123')).toBe(tiup.split('\n').indexOf('http_port = 8123'));
    expect(rewriteTlsConfig(ti, '/d/conf/tiflash.toml', on, null, 'v6.5.0')).toBe(tiup);
  });

  it('a cluster TiUP put on TLS (https_port already) is disabled back to http_port', () => {
    const tiupTls = mergeToToml('tiflash', { listen_host: '0.0.0.0', tcp_port: 9000, https_port: 8123, 'security.ca_path': '/d/tls/ca.crt', 'security.cert_path': '/d/tls/x.crt', 'security.key_path': '/d/tls/x.pem' });
    expect(rewriteTlsConfig(ti, '/d/conf/tiflash.toml', tiupTls, { paths }, 'v6.5.0')).toBe(tiupTls);
    const off = rewriteTlsConfig(ti, '/d/conf/tiflash.toml', tiupTls, null, 'v6.5.0');
    expect(TOML.parse(off)).toEqual({ listen_host: '0.0.0.0', tcp_port: 9000, http_port: 8123 });
  });

  it('v7.1+ is left alone (TiFlash serves no HTTP port, TiUP writes neither key)', () => {
    const on = rewriteTlsConfig(ti, '/d/conf/tiflash.toml', tiup, { paths }, 'v7.1.0');
    expect(on).toMatch(/^http_port = 8123$/m);
    expect(on).not.toContain('https_port');
  });

  it('below v7.1 with neither key: https_port from the topology is added', () => {
    const text = 'listen_host = "0.0.0.0"\n\n[flash]\nservice_addr = "x:3930"\n';
    const on = rewriteTlsConfig(inst('tiflash', { http_port: 18123 }), '/d/conf/tiflash.toml', text, { paths }, 'v6.5.0');
    expect(TOML.parse(on).https_port).toBe(18123);
    expect(on.startsWith('listen_host = "0.0.0.0"\nhttps_port = 18123\n')).toBe(true);
  });

  it('unknown version: a file carrying http_port is still switched (harmless from v7.1, needed before)', () => {
    expect(rewriteTlsConfig(ti, '/d/conf/tiflash.toml', tiup, { paths }, undefined)).toContain('https_port = 8123');
  });
});
