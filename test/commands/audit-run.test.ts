/**
 * `runAudit` end to end against one host: the files on it from a FakePool, its ports served by
 * loopback TLS servers (127.0.0.1, port 0) with certificates from tiseal's PKI. One PASS and one
 * FAIL (and WARN where the check has one) per audit check; the base case passes every check, each
 * other case changes one thing and must change exactly the findings it names. sql-tls runs
 * against the TiDB emulator's MySQL port (lab/emulators/common/mysql-server.ts), in-process.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { Finding, runAudit } from '../../src/commands/audit';
import { tlsPaths } from '../../src/components';
import type { GlobalOptions } from '../../src/options';
import { FakePool } from '../../src/ssh/fake';
import { ClusterDir } from '../../src/state/cluster-dir';
import { ClusterMeta, writeMeta } from '../../src/state/meta';
import { parseTopology, type Instance } from '../../src/topology';
import { createMysqlServer } from '../../lab/emulators/common/mysql-server';
import { loadMysqlTls, type MysqlTlsConfig } from '../../lab/emulators/common/mysql-tls';
import type { Logger } from '../../lab/emulators/common/log';
import { createCA, issueLeaf } from '../../src/pki';
import { sqlCertStore } from '../../src/pki/sql-store';
import { store as kvStore } from '../support/mysql-tidb';
import { LoopbackPki, PortSpec, Served } from '../support/loopback-tls';

jest.setTimeout(60_000);

const CLUSTER = 'audit';
type Label = 'pdClient' | 'pdPeer' | 'tikv' | 'tikvStatus' | 'tidb' | 'tidbStatus';
const LABELS: Label[] = ['pdClient', 'pdPeer', 'tikv', 'tikvStatus'];
const quiet = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} } as unknown as Logger;

/**
 * A TiDB MySQL port: the TiDB emulator's server (lab/emulators/common/mysql-server.ts, root
 * without a password) on 127.0.0.1:0, with a server certificate from the SQL CA in the state dir
 * when `tls`, and require_secure_transport as given.
 */
async function mysqlPort(stateDir: string, tidb: { tls: boolean; require: boolean }): Promise<Served> {
  let tlsConfig: MysqlTlsConfig | undefined;
  if (tidb.tls) {
    const ca = await createCA({ cluster: CLUSTER, commonName: `tiseal SQL CA ${CLUSTER}`, keyType: 'ecdsa' });
    await sqlCertStore(stateDir, CLUSTER).saveCA(ca);
    const leaf = await issueLeaf(ca, { commonName: 'tidb', hosts: ['127.0.0.1'], keyType: 'ecdsa' });
    const dir = fs.mkdtempSync(path.join(stateDir, 'sql-'));
    const files = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'tidb.crt'), key: path.join(dir, 'tidb.pem') };
    fs.writeFileSync(files.ca, ca.bundlePem);
    fs.writeFileSync(files.cert, leaf.fullChainPem);
    fs.writeFileSync(files.key, leaf.keyPem, { mode: 0o600 });
    // Loaded before require_secure_transport was turned on (SET GLOBAL, as `sql-tls require` does):
    // client certificates verified when given, not required (pkg/util/misc.go LoadTLSCertificates).
    tlsConfig = loadMysqlTls(files, { tlsVersion: '', requireSecureTransport: false, log: quiet });
  }
  const version = '8.0.11-TiDB-v8.5.1';
  const srv = createMysqlServer({
    serverVersion: version,
    log: quiet,
    rootPassword: () => '',
    offerSsl: tidb.tls,
    ctx: { serverVersion: version, tidbVersionText: 'Release Version: v8.5.1', requireSecureTransport: () => tidb.require, async setRequireSecureTransport() {}, currentTls: () => tlsConfig, reloadTls() {}, kv: kvStore() },
  });
  const sockets = new Set<import('net').Socket>();
  srv.on('connection', (s: import('net').Socket) => {
    sockets.add(s);
    // The emulator's TLS upgrade bridges the socket through a JS Duplex that only an 'end' of the
    // socket ends (mysql-server.ts upgrade): a socket that just closes leaves the TLS side and its
    // stream handle open, and the jest worker alive. End the bridge when the socket closes.
    s.on('close', () => (sockets.delete(s), s.emit('end')));
  });
  await new Promise<void>((r, j) => (srv.once('error', j), srv.listen(0, '127.0.0.1', () => r())));
  return {
    port: (srv.address() as import('net').AddressInfo).port,
    close: () => new Promise<void>((r) => (srv.close(() => r()), sockets.forEach((s) => s.destroy()))),
  };
}

interface Case {
  /** what answers on each port (default: TLS 1.2+, client certificate required, a 365-day certificate from the cluster CA) */
  ports?: Partial<Record<Label, PortSpec>>;
  /** [security] lines of pd.toml / tikv.toml besides the TLS paths (default: allow-list and redaction on) */
  pdSecurity?: string;
  tikvSecurity?: string;
  /** tikv.toml's [security.encryption] (default: aes256-ctr with a file master key) */
  tikvEncryption?: string;
  /** run_pd.sh starts PD with --force-new-cluster */
  forcedScript?: boolean;
  /** the transient unit of an interrupted quorum recovery runs PD forced */
  forcedUnit?: boolean;
  /** mode and owner of the leaf keys on the host (default 0600 tidb) */
  keyMode?: number;
  keyOwner?: string;
  /** the backup scan's listing (NUL records) for the deploy dirs */
  backups?: (deploy: { pd: string; tikv: string }) => string;
  /** the CA-key scan's answer; `caKeyPem` is the CA key in the state dir */
  caScan?: (caKeyPem: string) => { stdout: string; code?: number; stderr?: string };
  /** PD's answer to GET /pd/api/v1/config/replicate */
  replicate?: { status: number; body: string };
  /** meta.json of the cluster */
  meta?: ClusterMeta;
  /** PD's version (GET /pd/api/v1/status) */
  pdVersion?: string;
  /** `check target` → level, or null when the finding is gone; targets with the port labels in braces */
  changes?: Record<string, Finding['level'] | null>;
  /** a TiDB too (the sql-tls check): its MySQL port (the TiDB emulator's) offers TLS or not, require_secure_transport on or off */
  tidb?: { tls: boolean; require: boolean };
}

/** Every finding of the base case (all PASS), as `check target`. */
const BASE = [
  ...(['pdClient', 'pdPeer', 'tikv', 'tikvStatus'] as const).flatMap((l) => {
    const role = l.startsWith('pd') ? 'pd' : 'tikv';
    const name = { pdClient: 'client_port', pdPeer: 'peer_port', tikv: 'port', tikvStatus: 'status_port' }[l];
    const where = `127.0.0.1:{${l}} (${role} ${name})`;
    return [`tls ${where}`, ...(l === 'tikvStatus' ? [] : [`mtls ${where}`]), `tls-version ${where}`, `certificate ${where}`];
  }),
  'pd-force-new-cluster 127.0.0.1:pd-{pdClient}',
  'caller-identity 127.0.0.1:pd-{pdClient}',
  'caller-identity 127.0.0.1:tikv-{tikv}',
  'key-files 127.0.0.1:/home/tidb/deploy/pd-{pdClient}/tls/pd.pem',
  'key-files 127.0.0.1:/home/tidb/deploy/tikv-{tikv}/tls/tikv.pem',
  'backup-keys 127.0.0.1',
  'ca-key 127.0.0.1',
  'encryption-at-rest 127.0.0.1:tikv-{tikv}',
  'replicas PD',
  'redact-info-log 127.0.0.1:pd-{pdClient}',
  'redact-info-log 127.0.0.1:tikv-{tikv}',
];

const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');
const ALLOW = 'cert-allowed-cn = ["pd", "tikv", "tidb", "tiseal"]\nredact-info-log = true';

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-audit-run-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Runs the audit for one case; returns its findings as `LEVEL check target` (ports as labels), sorted. */
async function audit(c: Case): Promise<string[]> {
  const stateDir = fs.mkdtempSync(path.join(dir, 'state-'));
  const pki = await LoopbackPki.create(stateDir, CLUSTER);
  const served: Partial<Record<Label, Served>> = {};
  const pdApi: http.RequestListener = (req, res) => {
    if (req.url === '/pd/api/v1/config/replicate') {
      const r = c.replicate ?? { status: 200, body: '{"max-replicas":3,"location-labels":""}' };
      res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body);
    } else if (req.url === '/pd/api/v1/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ version: c.pdVersion ?? '8.5.1', git_hash: 'x', start_timestamp: 1 }));
    } else res.writeHead(404).end('not found');
  };
  try {
    for (const l of LABELS) served[l] = await pki.serve(l.startsWith('pd') ? 'pd' : 'tikv', c.ports?.[l], l === 'pdClient' ? pdApi : undefined);
    if (c.tidb) {
      served.tidb = await mysqlPort(stateDir, c.tidb);
      served.tidbStatus = await pki.serve('tidb');
    }
    const labels = Object.keys(served) as Label[];
    const port = (l: Label) => served[l]!.port;
    const file = path.join(stateDir, 'topology.yaml');
    let text = `global:\n  user: tidb\npd_servers:\n  - host: 127.0.0.1\n    client_port: ${port('pdClient')}\n    peer_port: ${port('pdPeer')}\ntikv_servers:\n  - host: 127.0.0.1\n    port: ${port('tikv')}\n    status_port: ${port('tikvStatus')}\n`;
    if (c.tidb) text += `tidb_servers:\n  - host: 127.0.0.1\n    port: ${port('tidb')}\n    status_port: ${port('tidbStatus')}\n`;
    fs.writeFileSync(file, text);
    const topology = parseTopology(text, file);
    const cluster = new ClusterDir(stateDir, CLUSTER);
    cluster.ensure();
    if (c.meta) writeMeta(cluster.metaFile, c.meta);

    const pool = new FakePool();
    const h = pool.host('127.0.0.1');
    const [pd, tikv, tidb] = ['pd', 'tikv', 'tidb'].map((r) => topology.instances.find((i) => i.role === r)) as [Instance, Instance, Instance | undefined];
    const security = (inst: Instance, ca: string, extra: string) => {
      const p = tlsPaths(inst);
      return `[security]\n${ca} = "${p.ca}"\ncert-path = "${p.cert}"\nkey-path = "${p.key}"\n${extra}\n`;
    };
    h.addFile(pd.configFiles[0], `name = "${pd.name}"\n${security(pd, 'cacert-path', c.pdSecurity ?? ALLOW)}`, { owner: 'tidb' });
    // TiUP's layout (embed/templates/scripts/run_pd.tpl): one flag a line
    const flags = [`--name="${pd.name}"`, `--client-urls="https://0.0.0.0:${port('pdClient')}"`, `--peer-urls="https://0.0.0.0:${port('pdPeer')}"`, ...(c.forcedScript ? ['--force-new-cluster'] : []), '--config=conf/pd.toml'];
    h.addFile(pd.runScript, `#!/bin/bash\nset -e\ncd "${pd.deployDir}" || exit 1\nexec bin/pd-server \\\n${flags.map((f) => `    ${f}`).join(' \\\n')}\n`, { owner: 'tidb', mode: 0o755 });
    const encryption = c.tikvEncryption ?? `[security.encryption]\ndata-encryption-method = "aes256-ctr"\n[security.encryption.master-key]\ntype = "file"\npath = "${tikv.deployDir}/encryption/master.key"\n`;
    h.addFile(tikv.configFiles[0], `${security(tikv, 'ca-path', c.tikvSecurity ?? ALLOW)}${encryption}`, { owner: 'tidb' });
    if (tidb) {
      const p = tlsPaths(tidb);
      h.addFile(tidb.configFiles[0], `[security]\ncluster-ssl-ca = "${p.ca}"\ncluster-ssl-cert = "${p.cert}"\ncluster-ssl-key = "${p.key}"\ncluster-verify-cn = ["pd", "tikv", "tidb", "tiseal"]\n${c.tidb!.tls ? `ssl-ca = "${tidb.deployDir}/tls/sql-ca.crt"\nssl-cert = "${tidb.deployDir}/tls/sql.crt"\nssl-key = "${tidb.deployDir}/tls/sql.pem"\n` : ''}`, { owner: 'tidb' });
    }
    for (const inst of [pd, tikv, ...(tidb ? [tidb] : [])]) h.addFile(tlsPaths(inst).key, 'not read', { owner: c.keyOwner ?? 'tidb', group: 'tidb', mode: c.keyMode ?? 0o600 });
    h.onExec(/^systemctl show -p ActiveState --value /, () => (c.forcedUnit ? 'active\n' : 'inactive\n'));
    const caKeyPem = fs.readFileSync(pki.store.caKeyPath, 'utf8');
    h.onExec(/^bash -s$/, (_cmd, { stdin }) => {
      const script = stdin?.toString() ?? '';
      if (script.includes('"$b/tiseal-*"')) return c.backups?.({ pd: pd.deployDir, tikv: tikv.deployDir }) ?? '';
      if (script.includes('TIMEOUT')) return c.caScan?.(caKeyPem) ?? `H ${sha256('another key')} /etc/ssl/private/other.key\0`;
      return { code: 127, stderr: 'unexpected script' };
    });

    const opts = { stateDir, concurrency: 2, readConcurrency: 2 } as GlobalOptions;
    const findings = await runAudit(file, opts, undefined, async () => ({ topology, cluster, pool, close: () => pool.closeAll() }));
    expect(pool.closed).toBe(true);
    const named = (s: string) => labels.reduce((t, l) => t.replace(new RegExp(`\\b${port(l)}\\b`, 'g'), `{${l}}`), s);
    return findings.map((f) => `${f.level} ${f.check} ${named(f.target)}`).sort();
  } finally {
    await Promise.all(Object.values(served).map((s) => s!.close()));
  }
}

function expected(changes: Case['changes'] = {}): string[] {
  const levels = new Map<string, Finding['level'] | null>(BASE.map((k) => [k, 'PASS']));
  for (const [k, v] of Object.entries(changes)) levels.set(k, v);
  return [...levels].flatMap(([k, v]) => (v ? [`${v} ${k}`] : [])).sort();
}

const PD_CLIENT = '127.0.0.1:{pdClient} (pd client_port)';
const PD_PEER = '127.0.0.1:{pdPeer} (pd peer_port)';
const TIKV = '127.0.0.1:{tikv} (tikv port)';
const TIKV_STATUS = '127.0.0.1:{tikvStatus} (tikv status_port)';
const gone = (where: string, mtls = true) => ({ ...(mtls ? { [`mtls ${where}`]: null } : {}), [`tls-version ${where}`]: null, [`certificate ${where}`]: null });

const CASES: Array<[string, Case]> = [
  ['every check passes', {}],
  // tls
  ['tls FAIL: a port speaks plaintext', { ports: { tikv: { kind: 'plain' } }, changes: { [`tls ${TIKV}`]: 'FAIL', ...gone(TIKV) } }],
  ['tls WARN: nothing answers on a port', { ports: { tikvStatus: { kind: 'closed' } }, changes: { [`tls ${TIKV_STATUS}`]: 'WARN', ...gone(TIKV_STATUS, false) } }],
  // mtls
  ['mtls FAIL: a client without a certificate is served', { ports: { pdPeer: { anonymous: true } }, changes: { [`mtls ${PD_PEER}`]: 'FAIL' } }],
  ['mtls is not asked of a status port', { ports: { tikvStatus: { anonymous: true } } }],
  // tls-version
  ['tls-version FAIL: TLS 1.0/1.1 accepted', { ports: { tikv: { oldTls: true } }, changes: { [`tls-version ${TIKV}`]: 'FAIL' } }],
  ['tls-version FAIL on a port that takes anonymous clients too', { ports: { tikvStatus: { oldTls: true, anonymous: true } }, changes: { [`tls-version ${TIKV_STATUS}`]: 'FAIL' } }],
  // certificate
  ['certificate FAIL: issued by another CA', { ports: { tikv: { foreign: true } }, changes: { [`certificate ${TIKV}`]: 'FAIL' } }],
  // PD's client port is also where replicas is read: a PD tiseal cannot verify is not asked
  ['certificate FAIL on PD\'s client port, and replicas WARN: PD is not believed', { ports: { pdClient: { foreign: true } }, changes: { [`certificate ${PD_CLIENT}`]: 'FAIL', 'replicas PD': 'WARN' } }],
  ['certificate FAIL: expired a day ago', { ports: { tikv: { daysLeft: -1 } }, changes: { [`certificate ${TIKV}`]: 'FAIL' } }],
  ['certificate WARN: 29 days left', { ports: { tikvStatus: { daysLeft: 29 } }, changes: { [`certificate ${TIKV_STATUS}`]: 'WARN' } }],
  ['certificate WARN: 0 days left (expires today)', { ports: { tikvStatus: { daysLeft: 0 } }, changes: { [`certificate ${TIKV_STATUS}`]: 'WARN' } }],
  ['certificate PASS: 30 days left', { ports: { tikvStatus: { daysLeft: 30 } } }],
  // pd-force-new-cluster
  ['pd-force-new-cluster FAIL: run_pd.sh starts PD forced', { forcedScript: true, changes: { 'pd-force-new-cluster 127.0.0.1:pd-{pdClient}': 'FAIL' } }],
  ['pd-force-new-cluster FAIL: the forced transient unit of a recovery still runs', { forcedUnit: true, changes: { 'pd-force-new-cluster 127.0.0.1:pd-{pdClient}': 'FAIL' } }],
  // caller-identity
  ['caller-identity WARN: no allow-list, --verify-cn never recorded', { tikvSecurity: 'redact-info-log = true', changes: { 'caller-identity 127.0.0.1:tikv-{tikv}': 'WARN' } }],
  ['caller-identity FAIL: no allow-list although meta.json records --verify-cn', { tikvSecurity: 'redact-info-log = true', meta: { enableTls: true, verifyCn: true }, changes: { 'caller-identity 127.0.0.1:tikv-{tikv}': 'FAIL' } }],
  ['caller-identity WARN, not FAIL: PD before v8.4.0 left without a list under --verify-cn', { pdSecurity: 'redact-info-log = true', pdVersion: 'v8.1.2', meta: { enableTls: true, verifyCn: true }, changes: { 'caller-identity 127.0.0.1:pd-{pdClient}': 'WARN' } }],
  ['caller-identity FAIL: PD v8.5 without a list under --verify-cn', { pdSecurity: 'redact-info-log = true', pdVersion: 'v8.5.1', meta: { enableTls: true, verifyCn: true }, changes: { 'caller-identity 127.0.0.1:pd-{pdClient}': 'FAIL' } }],
  // key-files
  ['key-files FAIL: keys readable by others', { keyMode: 0o644, changes: { 'key-files 127.0.0.1:/home/tidb/deploy/pd-{pdClient}/tls/pd.pem': 'FAIL', 'key-files 127.0.0.1:/home/tidb/deploy/tikv-{tikv}/tls/tikv.pem': 'FAIL' } }],
  ['key-files FAIL: keys 0600 but owned by root', { keyOwner: 'root', changes: { 'key-files 127.0.0.1:/home/tidb/deploy/pd-{pdClient}/tls/pd.pem': 'FAIL', 'key-files 127.0.0.1:/home/tidb/deploy/tikv-{tikv}/tls/tikv.pem': 'FAIL' } }],
  // backup-keys
  ['backup-keys PASS: a backed-up key 0600 in 0700 directories', { backups: ({ pd }) => `D 700 tidb ${pd}/backup/tiseal-r1\0D 700 tidb ${pd}/backup/tiseal-r1/tls\0F 600 tidb ${pd}/backup/tiseal-r1/tls/pd.pem\0K ${pd}/backup/tiseal-r1/tls/pd.pem\0` }],
  ['backup-keys FAIL: a backed-up key 0644', { backups: ({ tikv }) => `D 700 tidb ${tikv}/backup/tiseal-r1\0F 644 tidb ${tikv}/backup/tiseal-r1/master.key\0K ${tikv}/backup/tiseal-r1/master.key\0`, changes: { 'backup-keys 127.0.0.1': 'FAIL' } }],
  // ca-key
  ['ca-key FAIL: the CA key is on the host', { caScan: (pem) => ({ stdout: `H ${sha256(pem)} /root/ca.key\0H ${sha256('x')} /etc/x.pem\0` }), changes: { 'ca-key 127.0.0.1': 'FAIL' } }],
  ['ca-key WARN: the search stopped at its time bound', { caScan: () => ({ stdout: `H ${sha256('x')} /etc/x.pem\0TIMEOUT\0` }), changes: { 'ca-key 127.0.0.1': 'WARN' } }],
  ['ca-key WARN: the search script failed', { caScan: () => ({ stdout: '', code: 1, stderr: 'mktemp: failed' }), changes: { 'ca-key 127.0.0.1': 'WARN' } }],
  // encryption-at-rest
  ['encryption-at-rest FAIL: plaintext', { tikvEncryption: '', changes: { 'encryption-at-rest 127.0.0.1:tikv-{tikv}': 'FAIL' } }],
  // replicas
  ['replicas FAIL: max-replicas 1', { replicate: { status: 200, body: '{"max-replicas":1}' }, changes: { 'replicas PD': 'FAIL' } }],
  ['replicas WARN: PD does not answer the config', { replicate: { status: 500, body: 'no' }, changes: { 'replicas PD': 'WARN' } }],
  // redact-info-log
  ['redact-info-log WARN: not set', { pdSecurity: 'cert-allowed-cn = ["pd", "tikv", "tidb", "tiseal"]', changes: { 'redact-info-log 127.0.0.1:pd-{pdClient}': 'WARN' } }],
  ['redact-info-log PASS: "marker"', { tikvSecurity: 'cert-allowed-cn = ["pd", "tikv", "tidb", "tiseal"]\nredact-info-log = "marker"' }],
];

describe('runAudit over a FakePool and loopback TLS servers', () => {
  it.each(CASES)('%s', async (_name, c) => {
    expect(await audit(c)).toEqual(expected(c.changes));
  });
});

// sql-tls: a TiDB too; its other findings (status port, caller identity, key file) all PASS.
describe('runAudit: the sql-tls check, against the TiDB emulator\'s MySQL port', () => {
  it.each([
    ['sql-tls PASS: TLS offered and verified against the SQL CA, 1.0/1.1 refused, require ON', { tls: true, require: true }, ['PASS sql-tls 127.0.0.1:{tidb} (tidb mysql)', 'PASS sql-tls 127.0.0.1:{tidb} (tidb mysql)', 'PASS sql-tls 127.0.0.1:{tidb} (tidb mysql)']],
    ['sql-tls WARN: TLS offered, require OFF', { tls: true, require: false }, ['PASS sql-tls 127.0.0.1:{tidb} (tidb mysql)', 'PASS sql-tls 127.0.0.1:{tidb} (tidb mysql)', 'WARN sql-tls 127.0.0.1:{tidb} (tidb mysql)']],
    ['sql-tls FAIL: require ON but no TLS offered', { tls: false, require: true }, ['FAIL sql-tls 127.0.0.1:{tidb} (tidb mysql)']],
    ['sql-tls WARN: no TLS offered, require OFF', { tls: false, require: false }, ['WARN sql-tls 127.0.0.1:{tidb} (tidb mysql)']],
  ] as const)('%s', async (_name, tidb, sql) => {
    const all = await audit({ tidb });
    expect(all.filter((f) => f.includes(' sql-tls ') || !f.startsWith('PASS '))).toEqual([...sql].sort());
    expect(all.filter((f) => f.includes('{tidbStatus}') || f.includes('tidb-{tidb}') || f.includes('/tidb.pem'))).toEqual(
      ['PASS caller-identity 127.0.0.1:tidb-{tidb}', 'PASS certificate 127.0.0.1:{tidbStatus} (tidb status_port)', 'PASS key-files 127.0.0.1:/home/tidb/deploy/tidb-{tidb}/tls/tidb.pem', 'PASS tls 127.0.0.1:{tidbStatus} (tidb status_port)', 'PASS tls-version 127.0.0.1:{tidbStatus} (tidb status_port)'],
    );
  });
});
