import * as dgram from 'dgram';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { main } from '../../src/cli';
import { appendAuditLog, auditRecord } from '../../src/state/audit-log';
import { X509Certificate } from 'crypto';
import { CertStore, createCA, issueLeaf } from '../../src/pki';
import { runRecord } from '../../src/util/run-record';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-auditlog-'));
  runRecord.reset();
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const lines = (f: string) => fs.readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l));

test('a record names who, where, the run, the verb and flags, the outcome, every serial signed and the CA', async () => {
  const ca = await createCA({ cluster: 'c1', keyType: 'ecdsa' });
  const leaf = await issueLeaf(ca, { commonName: 'tikv', hosts: ['10.0.0.1'], keyType: 'ecdsa' });
  runRecord.noteRun('20261207-abcd', 'c1');
  const rec = auditRecord({ stateDir: dir, verb: 'tls rotate', argv: ['tls', 'rotate', 'c1.yaml', '--yes'], exitCode: 0 });
  expect(rec).toMatchObject({
    user: os.userInfo().username,
    controlHost: os.hostname(),
    runId: '20261207-abcd',
    verb: 'tls rotate',
    argv: ['tls', 'rotate', 'c1.yaml', '--yes'],
    cluster: 'c1',
    outcome: 'ok',
    exitCode: 0,
    issued: [{ cn: 'tikv', serial: leaf.info.serialHex, notAfter: leaf.info.notAfter.toISOString(), ca: ca.info.fingerprintSha256 }],
    caFingerprints: [ca.info.fingerprintSha256],
  });
  const failed = auditRecord({ stateDir: dir, verb: 'tls enable', argv: [], exitCode: 1, failure: new Error('10.0.0.1: down\nmore') });
  expect([failed.outcome, failed.error]).toEqual(['failed', '10.0.0.1: down']);
});

test('appended as one JSON line each, 0600, never through a symlink; also to syslog', async () => {
  const got: string[] = [];
  const sock = dgram.createSocket('udp4');
  sock.on('message', (m) => got.push(m.toString()));
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  try {
    const port = sock.address().port;
    const rec = auditRecord({ stateDir: dir, verb: 'encrypt enable', argv: ['encrypt', 'enable', 'x.yaml'], exitCode: 0 });
    expect(appendAuditLog(dir, rec, { syslog: { udpPort: port } })).toEqual([]);
    expect(appendAuditLog(dir, { ...rec, verb: 'encrypt disable' }, { syslog: false })).toEqual([]);
    const file = path.join(dir, 'audit.log');
    expect(lines(file).map((l) => l.verb)).toEqual(['encrypt enable', 'encrypt disable']);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    for (let i = 0; i < 50 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(got).toHaveLength(1);
    expect(got[0]).toMatch(/tiseal/);
    expect(got[0]).toContain('"verb":"encrypt enable"');
    // a symlink planted as audit.log is not followed
    fs.rmSync(file);
    const elsewhere = path.join(dir, 'elsewhere');
    fs.writeFileSync(elsewhere, '');
    fs.symlinkSync(elsewhere, file);
    const w = appendAuditLog(dir, rec, { syslog: false });
    expect(w).toHaveLength(1);
    expect(w[0]).toMatch(/could not append to .*audit\.log/);
    expect(fs.readFileSync(elsewhere, 'utf8')).toBe('');
  } finally {
    sock.close();
  }
});

test('the CLI writes one record for a run that changed something (a certificate handed out), none for a dry run, a read-only verb or a refused run', async () => {
  const topo = path.join(dir, 'c9.yaml');
  fs.writeFileSync(topo, 'global:\n  user: tidb\n  ssh_port: 1\npd_servers:\n  - host: 127.0.0.1\n');
  const state = path.join(dir, 'state');
  const kh = path.join(dir, 'kh');
  const ca = await createCA({ cluster: 'c9', keyType: 'ecdsa' });
  const said: string[] = [];
  const silence = [jest.spyOn(process.stdout, 'write').mockImplementation(() => true), jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => (said.push(String(c)), true))];
  try {
    await main(['topology', 'check', topo, '--state-dir', state]);
    await main(['tls', 'enable', topo, '--dry-run', '--state-dir', state, '--known-hosts', kh]);
    // no terminal and no --yes: a usage error, the run never started
    expect(await main(['tls', 'enable', topo, '--state-dir', state])).toBe(2);
    // refused before any change (nothing listens on the SSH port: loopback, port 1)
    expect(await main(['tls', 'enable', topo, '--yes', '--state-dir', state, '--known-hosts', kh])).not.toBe(0);
    expect(fs.existsSync(path.join(state, 'audit.log'))).toBe(false);
    // cert client signs and hands out a certificate (local only): recorded, with its serial and CA
    await new CertStore(state, 'c9').saveCA(ca);
    said.length = 0;
    const code = await main(['cert', 'client', topo, '--cn', 'ops', '--out', path.join(dir, 'out'), '--state-dir', state]);
    expect(`${code} ${said.join('')}`).toBe('0 ');
  } finally {
    silence.forEach((s) => s.mockRestore());
  }
  const recs = lines(path.join(state, 'audit.log'));
  expect(recs).toHaveLength(1);
  const serial = new X509Certificate(fs.readFileSync(path.join(dir, 'out', 'ops.crt'))).serialNumber;
  expect(recs[0]).toMatchObject({ verb: 'cert client', outcome: 'ok', cluster: 'c9', argv: ['cert', 'client', topo, '--cn', 'ops', '--out', path.join(dir, 'out'), '--state-dir', state], caFingerprints: [ca.info.fingerprintSha256] });
  expect(recs[0].issued.map((i: { cn: string; serial: string }) => `${i.cn} ${i.serial.toUpperCase().replace(/^0+/, '')}`)).toEqual([`ops ${serial.replace(/^0+/, '')}`]);
});
