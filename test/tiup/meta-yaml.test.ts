/**
 * meta.yaml edited as text. The fixture has the shape TiUP writes (yaml.Marshal of ClusterMeta:
 * user, tidb_version, last_ops_ver, topology; pingcap/tiup pkg/cluster/spec/spec.go), where
 * `enable_tls` is omitted while false (GlobalOptions.TLSEnabled `yaml:"enable_tls,omitempty"`).
 */
import * as fs from 'fs';
import * as path from 'path';
import { LocalStateError } from '../../src/errors';
import { readEnableTls, setEnableTls } from '../../src/tiup/meta-yaml';

const fixture = (n: string) => fs.readFileSync(path.join(__dirname, 'fixtures', n), 'utf8');
const META = fixture('meta.yaml');
const META_TLS = fixture('meta.tls.yaml');
const F = '/home/tidb/.tiup/storage/cluster/clusters/prod/meta.yaml';

describe('setEnableTls', () => {
  it('inserts enable_tls: true where TiUP would (after ssh_type), byte for byte', () => {
    expect(readEnableTls(META, F)).toBe(false);
    const out = setEnableTls(META, true, F);
    expect(out).toBe(META_TLS);
    expect(readEnableTls(out, F)).toBe(true);
  });

  it('flips an existing value in place and changes nothing else', () => {
    const off = META_TLS.replace('enable_tls: true', 'enable_tls: false');
    expect(setEnableTls(off, true, F)).toBe(META_TLS);
    expect(setEnableTls(META_TLS, false, F)).toBe(off);
  });

  it('leaves the file alone when it already says so (absent = false, as TiUP writes a plaintext cluster)', () => {
    expect(setEnableTls(META, false, F)).toBe(META);
    expect(setEnableTls(META_TLS, true, F)).toBe(META_TLS);
  });

  it('edits a flow-style global mapping inside its braces', () => {
    const flow = 'user: tidb\ntidb_version: v8.5.0\ntopology:\n  global: {user: tidb, ssh_port: 22, deploy_dir: /tidb-deploy}\n  pd_servers: [{host: 10.0.1.1}]\n';
    const on = setEnableTls(flow, true, F);
    expect(on).toBe('user: tidb\ntidb_version: v8.5.0\ntopology:\n  global: {enable_tls: true, user: tidb, ssh_port: 22, deploy_dir: /tidb-deploy}\n  pd_servers: [{host: 10.0.1.1}]\n');
    expect(setEnableTls(on, false, F)).toBe(on.replace('enable_tls: true', 'enable_tls: false'));
    expect(setEnableTls('topology:\n  global: {}\n', true, F)).toBe('topology:\n  global: {enable_tls: true}\n');
  });

  it('keeps comments, quoting and indentation of a hand-edited file', () => {
    const odd = 'topology:\n   global:   # edited by hand\n      deploy_dir: "/tidb-deploy"   # quoted\n      enable_tls: false # was off\n   pd_servers:\n   - host: 10.0.1.1\n';
    expect(setEnableTls(odd, true, F)).toBe(odd.replace('enable_tls: false #', 'enable_tls: true #'));
    const noAnchor = 'topology:\n  global:\n    deploy_dir: /d\n';
    expect(setEnableTls(noAnchor, true, F)).toBe('topology:\n  global:\n    enable_tls: true\n    deploy_dir: /d\n');
  });

  it('refuses a file that is not TiUP meta, naming it', () => {
    expect(() => setEnableTls('user: tidb\n', true, F)).toThrow(LocalStateError);
    expect(() => setEnableTls('user: tidb\n', true, F)).toThrow(F);
    expect(() => setEnableTls('topology:\n  global: [\n', true, F)).toThrow(new RegExp(`^${F.replace(/\./g, '\\.')}:\\d+:\\d+`));
  });
});
