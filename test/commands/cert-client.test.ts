/**
 * `tiseal cert client` end to end in-process: a CA in a temp state dir, the command through
 * main([...]), and the results checked with the real openssl and curl CLIs (and a real mutual-TLS
 * handshake against a Node TLS server on 127.0.0.1).
 */
import { execFile } from 'child_process';
import fs from 'fs';
import net from 'net';
import os from 'os';
import path from 'path';
import { PassThrough } from 'stream';
import tls from 'tls';
import { captureOutput } from '../support/capture';
import { tiseal } from '../support/cli';
import { run as runCertClient, CertClientResult, promptPassword } from '../../src/commands/cert-client';
import { toGlobalOptions } from '../../src/options';
import { CertStore, KeyType, createCA, issueLeaf, CertificateAuthority } from '../../src/pki';
import { openssl } from '../pki/helpers';


/** Async so a TLS server in this process can answer while curl runs. */
function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', ...args], { encoding: 'utf8', timeout: 30_000 }, (e, stdout, stderr) => {
      const code = e ? (typeof (e as { code?: unknown }).code === 'number' ? (e as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const TOPOLOGY = `global:
  user: tidb
  deploy_dir: /tidb-deploy
  data_dir: /tidb-data
component_versions:
  pd: v8.5.1
pd_servers:
  - host: 10.0.0.1
  - host: 10.0.0.2
tikv_servers:
  - host: 10.0.0.3
    port: 20161
tidb_servers:
  - host: 10.0.0.4
    status_port: 10081
`;

const mode = (f: string) => fs.statSync(f).mode & 0o777;
/** DER SubjectPublicKeyInfo, so a key and a certificate can be compared byte for byte. */
const pubFromCert = (crt: string) => openssl(['x509', '-in', crt, '-noout', '-pubkey']).stdout;
const pubFromKey = (keyPem: string) => openssl(['pkey', '-pubout'], { input: keyPem }).stdout;

/** A temp dir with the lab topology and a state dir holding a CA for cluster `lab`. */
async function labStateWithCA(keyType: KeyType): Promise<{ root: string; stateDir: string; topo: string; ca: CertificateAuthority }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-certclient-'));
  const stateDir = path.join(root, 'state');
  const topo = path.join(root, 'lab.yaml');
  fs.writeFileSync(topo, TOPOLOGY);
  const ca = await createCA({ cluster: 'lab', keyType });
  await new CertStore(stateDir, 'lab').saveCA(ca);
  return { root, stateDir, topo, ca };
}

describe.each<KeyType>(['rsa', 'ecdsa'])('tiseal cert client (%s CA)', (keyType) => {
  let root: string;
  let stateDir: string;
  let topo: string;
  let ca: CertificateAuthority;

  beforeAll(async () => {
    ({ root, stateDir, topo, ca } = await labStateWithCA(keyType));
    fs.writeFileSync(path.join(root, 'pw'), 'correct-horse-battery\nsecond line is ignored\n');
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('writes a client-only certificate, 0600 key, CA bundle and a PKCS#12 that openssl reads without -legacy', async () => {
    const out = path.join(root, 'out-a', 'nested');
    const r = await tiseal('cert', 'client', topo, '--cn', 'ops-alice', '--out', out, '--state-dir', stateDir, '--p12', '--p12-password-file', path.join(root, 'pw'));
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const crt = path.join(out, 'ops-alice.crt');
    const key = path.join(out, 'ops-alice.key');
    const caFile = path.join(out, 'ca.crt');
    const p12 = path.join(out, 'ops-alice.p12');

    expect(mode(out)).toBe(0o700);
    expect(mode(key)).toBe(0o600);
    expect(mode(p12)).toBe(0o600);
    expect(mode(crt)).toBe(0o644);
    expect(fs.readFileSync(caFile, 'utf8')).toBe(ca.bundlePem);

    expect(openssl(['verify', '-CAfile', caFile, crt]).stdout).toContain(`${crt}: OK`);
    const x = openssl(['x509', '-in', crt, '-noout', '-subject', '-ext', 'extendedKeyUsage']).stdout;
    expect(x).toMatch(/subject=CN ?= ?ops-alice/);
    expect(x).toContain('TLS Web Client Authentication');
    expect(x).not.toContain('Server Authentication');
    // openssl's own purpose check agrees: good for an SSL client, not for a server.
    const purpose = openssl(['x509', '-in', crt, '-noout', '-purpose']).stdout;
    expect(purpose).toContain('SSL client : Yes');
    expect(purpose).toContain('SSL server : No');
    expect(pubFromKey(fs.readFileSync(key, 'utf8'))).toBe(pubFromCert(crt));

    // PKCS#12: MAC and key encryption are the modern algorithms (no -legacy provider needed) ...
    const info = openssl(['pkcs12', '-in', p12, '-passin', `file:${path.join(root, 'pw')}`, '-info', '-noout']);
    expect(info.stderr).toContain('MAC: sha256');
    expect(info.stderr).toMatch(/PBES2, PBKDF2, AES-256-CBC/);
    // ... and it holds the key of the certificate, the certificate and the CA.
    const keyOut = openssl(['pkcs12', '-in', p12, '-passin', `file:${path.join(root, 'pw')}`, '-nocerts', '-nodes']).stdout;
    expect(pubFromKey(keyOut)).toBe(pubFromCert(crt));
    const certsOut = openssl(['pkcs12', '-in', p12, '-passin', `file:${path.join(root, 'pw')}`, '-nokeys']).stdout;
    expect(certsOut).toMatch(/subject=CN ?= ?ops-alice/);
    expect(certsOut).toMatch(/subject=CN ?= ?tiseal CA lab/);
    expect(certsOut).toContain('friendlyName: ops-alice');
    // The wrong password does not open it.
    const wrong = path.join(root, 'wrong-pw');
    fs.writeFileSync(wrong, 'not-the-password\n');
    expect(openssl(['pkcs12', '-in', p12, '-passin', `file:${wrong}`, '-noout'], { allowFail: true }).code).not.toBe(0);

    // Ready-to-paste commands: first PD / TiKV / TiDB of the topology, absolute paths, the ctl version.
    expect(r.out).toContain(`tiup ctl:v8.5.1 pd -u https://10.0.0.1:2379 --cacert ${caFile} --cert ${crt} --key ${key}`);
    expect(r.out).toContain(`tiup ctl:v8.5.1 tikv --host 10.0.0.3:20161 --ca-path ${caFile} --cert-path ${crt} --key-path ${key}`);
    expect(r.out).toContain(`tiup ctl:v8.5.1 tidb --host 10.0.0.4 --port 10081 --ca ${caFile} --ssl-cert ${crt} --ssl-key ${key}`);
    expect(r.out).toContain(`curl --cacert ${caFile} --cert ${crt} --key ${key} https://10.0.0.1:2379/pd/api/v1/members`);
    expect(r.out).toContain(`ETCDCTL_API=3 etcdctl --endpoints https://10.0.0.1:2379 --cacert ${caFile} --cert ${crt} --key ${key} member list`);
    expect(r.out).not.toMatch(/allow-list/);
  });

  it('passes a real mutual-TLS handshake with curl against a server that requires client certificates', async () => {
    const out = path.join(root, 'out-mtls');
    const r = await tiseal('cert', 'client', topo, '--cn', 'curl-user', '--out', out, '--state-dir', stateDir);
    expect(r.code).toBe(0);
    const server = await issueLeaf(ca, { commonName: 'pd', hosts: ['127.0.0.1'], keyType });
    const seen: string[] = [];
    const sockets = new Set<net.Socket>();
    const srv = tls.createServer({ key: server.keyPem, cert: server.certPem, ca: server.caPem, requestCert: true, rejectUnauthorized: true }, (sock) => {
      const cn = String(sock.getPeerCertificate().subject?.CN);
      seen.push(cn);
      sock.once('data', () => sock.end(`HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nhello ${cn}\n`));
    });
    srv.on('connection', (s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => resolve());
    });
    const port = (srv.address() as net.AddressInfo).port;
    try {
      const ok = await curl(['--cacert', path.join(out, 'ca.crt'), '--cert', path.join(out, 'curl-user.crt'), '--key', path.join(out, 'curl-user.key'), `https://127.0.0.1:${port}/`]);
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toBe('hello curl-user\n');
      expect(seen).toEqual(['curl-user']);
      // Without the client certificate the same server turns curl away: the certificate is what got it in.
      const refused = await curl(['--cacert', path.join(out, 'ca.crt'), `https://127.0.0.1:${port}/`]);
      expect(refused.code).not.toBe(0);
      expect(seen).toEqual(['curl-user']);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });
});

describe('tiseal cert client: refusals and options', () => {
  let root: string;
  let stateDir: string;
  let topo: string;

  beforeAll(async () => {
    ({ root, stateDir, topo } = await labStateWithCA('rsa'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const args = (out: string, ...more: string[]) => ['cert', 'client', topo, '--out', out, '--state-dir', stateDir, ...more];

  it('without a CA: exit 1, names the store dir and suggests tls enable', async () => {
    const empty = path.join(root, 'no-state');
    const out = path.join(root, 'out-noca');
    const r = await tiseal('cert', 'client', topo, '--cn', 'bob', '--out', out, '--state-dir', empty);
    expect(r.code).toBe(1);
    const [first, second] = r.err.split('\n');
    expect(first).toBe(`error: no CA for cluster 'lab' in ${path.join(empty, 'clusters', 'lab', 'tls')}`);
    expect(second).toMatch(/suggestion: run `tiseal tls enable .*lab\.yaml` first/);
    expect(second).toContain('--ca-cert');
    expect(fs.existsSync(out)).toBe(false);
  });

  it.each([['a b'], [''], ['x'.repeat(65)], ['bob/../../etc'], ['ca'], ['.hidden'], ['ünï']])('rejects --cn %p with exit 2', async (cn) => {
    const out = path.join(root, 'out-badcn');
    const r = await tiseal(...args(out, '--cn', cn));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: invalid --cn/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('--key-type: ecdsa under the RSA CA (PKCS#8 key, openssl verifies), the CA\'s type by default, exit 2 for anything else', async () => {
    const out = path.join(root, 'out-keytype');
    expect((await tiseal(...args(out, '--cn', 'eve', '--key-type', 'ecdsa'))).code).toBe(0);
    const crt = path.join(out, 'eve.crt');
    expect(openssl(['verify', '-CAfile', path.join(out, 'ca.crt'), crt]).stdout).toContain(': OK');
    expect(openssl(['x509', '-in', crt, '-noout', '-text']).stdout).toMatch(/id-ecPublicKey[\s\S]*NIST CURVE: P-256[\s\S]*Signature Algorithm: sha256WithRSAEncryption/);
    expect(fs.readFileSync(path.join(out, 'eve.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect((await tiseal(...args(out, '--cn', 'rsa-by-default'))).code).toBe(0);
    expect(openssl(['x509', '-in', path.join(out, 'rsa-by-default.crt'), '-noout', '-text']).stdout).toContain('Public-Key: (2048 bit)');
    const bad = await tiseal(...args(out, '--cn', 'mallory', '--key-type', 'dsa'));
    expect(bad.code).toBe(2);
    expect(bad.err.split('\n')[0]).toBe("error: invalid --key-type 'dsa'");
    expect(bad.err).toContain('suggestion: use one of: rsa, ecdsa');
    expect(fs.existsSync(path.join(out, 'mallory.crt'))).toBe(false);
  });

  it('accepts the documented CN alphabet', async () => {
    const out = path.join(root, 'out-cn');
    const r = await tiseal(...args(out, '--cn', 'Backup_1.ops@dc-1'));
    expect(r.code).toBe(0);
    expect(openssl(['x509', '-in', path.join(out, 'Backup_1.ops@dc-1.crt'), '-noout', '-subject']).stdout).toMatch(/CN ?= ?Backup_1\.ops@dc-1/);
  });

  it('rejects a bad --cert-days with exit 2 and one outliving the CA with exit 1 (from pki)', async () => {
    const out = path.join(root, 'out-days');
    expect((await tiseal(...args(out, '--cn', 'bob', '--cert-days', 'lots'))).code).toBe(2);
    expect((await tiseal(...args(out, '--cn', 'bob', '--cert-days', '0'))).code).toBe(2);
    const r = await tiseal(...args(out, '--cn', 'bob', '--cert-days', '4000'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/would outlive CA 'tiseal CA lab'/);
    expect(fs.existsSync(out)).toBe(false);
    const ok = await tiseal(...args(out, '--cn', 'bob', '--cert-days', '30'));
    expect(ok.code).toBe(0);
    const end = openssl(['x509', '-in', path.join(out, 'bob.crt'), '-noout', '-enddate']).stdout.replace('notAfter=', '').trim();
    const days = (new Date(end).getTime() - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(29);
    expect(days).toBeLessThanOrEqual(30);
  });

  it('refuses to overwrite existing files without --yes, replaces them with --yes', async () => {
    const out = path.join(root, 'out-exist');
    expect((await tiseal(...args(out, '--cn', 'carol'))).code).toBe(0);
    const before = fs.readFileSync(path.join(out, 'carol.crt'), 'utf8');
    const r = await tiseal(...args(out, '--cn', 'carol'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${path.join(out, 'carol.crt')}, ${path.join(out, 'carol.key')} already exist`);
    expect(r.err).toMatch(/suggestion: pass --yes to overwrite/);
    expect(fs.readFileSync(path.join(out, 'carol.crt'), 'utf8')).toBe(before);
    const y = await tiseal(...args(out, '--cn', 'carol', '--yes'));
    expect(y.code).toBe(0);
    const after = fs.readFileSync(path.join(out, 'carol.crt'), 'utf8');
    expect(after).not.toBe(before);
    expect(pubFromKey(fs.readFileSync(path.join(out, 'carol.key'), 'utf8'))).toBe(pubFromCert(path.join(out, 'carol.crt')));
    expect(mode(path.join(out, 'carol.key'))).toBe(0o600);
    // No temp files left behind by the atomic writes.
    expect(fs.readdirSync(out).sort()).toEqual(['ca.crt', 'carol.crt', 'carol.key']);
  });

  it('shares ca.crt between certificates of the same CA, but will not replace another CA bundle', async () => {
    const out = path.join(root, 'out-shared');
    expect((await tiseal(...args(out, '--cn', 'dave'))).code).toBe(0);
    expect((await tiseal(...args(out, '--cn', 'erin'))).code).toBe(0);
    expect(fs.readdirSync(out).sort()).toEqual(['ca.crt', 'dave.crt', 'dave.key', 'erin.crt', 'erin.key']);
    const other = await createCA({ cluster: 'other' });
    fs.writeFileSync(path.join(out, 'ca.crt'), other.bundlePem);
    const r = await tiseal(...args(out, '--cn', 'frank'));
    expect(r.code).toBe(1);
    expect(r.err).toContain(`${path.join(out, 'ca.crt')} already exists`);
    expect(fs.existsSync(path.join(out, 'frank.key'))).toBe(false);
  });

  it('leaves an existing --out directory mode alone', async () => {
    const out = path.join(root, 'out-mode');
    fs.mkdirSync(out, { mode: 0o755 });
    fs.chmodSync(out, 0o755);
    expect((await tiseal(...args(out, '--cn', 'gina'))).code).toBe(0);
    expect(mode(out)).toBe(0o755);
  });

  describe('without a terminal', () => {
    let stdinTTY: PropertyDescriptor | undefined;
    beforeAll(() => {
      stdinTTY = Object.getOwnPropertyDescriptor(process.stdin, 'isTTY');
      Object.defineProperty(process.stdin, 'isTTY', { value: false, configurable: true });
    });
    afterAll(() => {
      if (stdinTTY) Object.defineProperty(process.stdin, 'isTTY', stdinTTY);
      else delete (process.stdin as { isTTY?: boolean }).isTTY;
    });

    it('--p12 without --p12-password-file exits 2 explaining the flag', async () => {
      const out = path.join(root, 'out-p12');
      const r = await tiseal(...args(out, '--cn', 'henry', '--p12'));
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/^error: --p12 needs a password and there is no terminal/);
      expect(r.err).toContain('--p12-password-file');
      expect(fs.existsSync(out)).toBe(false);
    });
  });

  it('refuses an empty or non-ASCII password file with exit 2, and --p12-password-file without --p12', async () => {
    const out = path.join(root, 'out-pw');
    const empty = path.join(root, 'empty-pw');
    fs.writeFileSync(empty, '\nsecret-on-line-two\n');
    const r = await tiseal(...args(out, '--cn', 'ivy', '--p12', '--p12-password-file', empty));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/empty PKCS#12 password/);
    const umlaut = path.join(root, 'umlaut-pw');
    fs.writeFileSync(umlaut, 'pässwörd\n');
    expect((await tiseal(...args(out, '--cn', 'ivy', '--p12', '--p12-password-file', umlaut))).code).toBe(2);
    expect((await tiseal(...args(out, '--cn', 'ivy', '--p12', '--p12-password-file', path.join(root, 'missing')))).code).toBe(2);
    const alone = await tiseal(...args(out, '--cn', 'ivy', '--p12-password-file', umlaut));
    expect(alone.code).toBe(2);
    expect(alone.err).toMatch(/only used with --p12/);
    expect(fs.existsSync(out)).toBe(false);
  });

  it('--dry-run lists the files and writes nothing', async () => {
    const out = path.join(root, 'out-dry');
    const r = await tiseal(...args(out, '--cn', 'jack', '--dry-run'));
    expect(r.code).toBe(0);
    expect(r.out).toContain(path.join(out, 'jack.key'));
    expect(fs.existsSync(out)).toBe(false);
  });

  it('notes CN allow-lists when meta.json says verifyCn, and a CN that is already a cluster identity', async () => {
    const meta = path.join(stateDir, 'clusters', 'lab', 'meta.json');
    fs.writeFileSync(meta, JSON.stringify({ enableTls: true, verifyCn: true }));
    try {
      const r = await tiseal(...args(path.join(root, 'out-meta'), '--cn', 'ops-mallory'));
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/note: this cluster runs with CN allow-lists \(--verify-cn\): components accept CN 'ops-mallory' only once it is in their lists/);
      const t = await tiseal(...args(path.join(root, 'out-meta'), '--cn', 'tikv'));
      expect(t.code).toBe(0);
      expect(t.out).toMatch(/note: CN 'tikv' is a cluster identity \(on the CN allow-list of pd, tikv\)/);
      expect(t.out).not.toMatch(/only once it is in their lists/);
      // tiseal's own control CN is on every list.
      const c = await tiseal(...args(path.join(root, 'out-meta'), '--cn', 'tiseal'));
      expect(c.out).toMatch(/note: CN 'tiseal' is a cluster identity \(on the CN allow-list of pd, tikv, tidb\)/);
    } finally {
      fs.rmSync(meta);
    }
    const plain = await tiseal(...args(path.join(root, 'out-meta2'), '--cn', 'ops-mallory'));
    expect(plain.out).not.toMatch(/note:/);
  });

  it('prints {cn, files, serial, notAfter, commands} as JSON', async () => {
    // cli.ts does not declare --json for this verb yet, so the command is called directly.
    const out = path.join(root, 'out-json');
    const pw = path.join(root, 'json-pw');
    fs.writeFileSync(pw, 'json-pass\n');
    const { value: code, out: text } = await captureOutput(() => runCertClient(topo, { cn: 'kate', out, p12: true, p12PasswordFile: pw, certDays: '365' }, toGlobalOptions({ stateDir, json: true })));
    expect(code).toBe(0);
    const j = JSON.parse(text) as CertClientResult;
    expect(j.cn).toBe('kate');
    expect(j.files).toEqual({ cert: path.join(out, 'kate.crt'), key: path.join(out, 'kate.key'), ca: path.join(out, 'ca.crt'), p12: path.join(out, 'kate.p12') });
    const serial = openssl(['x509', '-in', j.files.cert, '-noout', '-serial']).stdout.trim().replace('serial=', '').toLowerCase().replace(/^0+/, '');
    expect(j.serial.replace(/^0+/, '')).toBe(serial);
    const end = openssl(['x509', '-in', j.files.cert, '-noout', '-enddate']).stdout.replace('notAfter=', '').trim();
    expect(new Date(j.notAfter).getTime()).toBe(new Date(end).getTime());
    expect(Object.keys(j.commands).sort()).toEqual(['curl', 'etcdctl', 'pdCtl', 'tidbCtl', 'tikvCtl']);
    expect(j.commands.curl).toBe(`curl --cacert ${j.files.ca} --cert ${j.files.cert} --key ${j.files.key} https://10.0.0.1:2379/pd/api/v1/members`);
  });

  it('quotes paths that need it and tells when the topology has no version', async () => {
    const out = path.join(root, "out with 'space");
    const bare = path.join(root, 'bare.yaml');
    fs.writeFileSync(bare, 'pd_servers:\n  - host: pd1.example\ntidb_servers:\n  - host: tidb1.example\n');
    const r = await tiseal('cert', 'client', bare, '--cluster-name', 'lab', '--cn', 'liam', '--out', out, '--state-dir', stateDir);
    expect(r.code).toBe(0);
    const caFile = path.join(out, 'ca.crt');
    expect(r.out).toContain(`tiup ctl:<cluster-version> pd -u https://pd1.example:2379 --cacert '${caFile.replace(/'/g, `'\\''`)}'`);
    expect(r.out).not.toContain('tikv-ctl');
    expect(r.out).toMatch(/note: the topology names no cluster version/);
    expect(r.out).toMatch(/note: tidb-ctl --host takes an IP address only/);
    expect(fs.existsSync(path.join(out, 'liam.crt'))).toBe(true);
  });
});

describe('promptPassword', () => {
  it('hides the input, refuses an empty password and asks again until both entries match', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    // inquirer ends its output stream after each prompt; keep this one open to see every prompt.
    (output as unknown as { end: () => void }).end = () => undefined;
    let shown = '';
    output.on('data', (d) => (shown += String(d)));
    const answer = promptPassword('Password for kate.p12:', { input: input as unknown as NodeJS.ReadStream, output: output as unknown as NodeJS.WriteStream });
    // One line per macrotask: inquirer settles each line (and opens the next prompt) in microtasks.
    for (const line of ['', 'first-try', 'typo', 'second-try', 'second-try']) {
      await new Promise<void>((resolve) => setTimeout(() => (input.write(`${line}\n`), resolve()), 0));
    }
    await expect(answer).resolves.toBe('second-try');
    const plain = shown.replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
    expect(plain).toContain('>> empty PKCS#12 password');
    expect(plain).toContain('The passwords differ; try again.');
    expect(plain).toContain('Repeat the password:');
    expect(plain).not.toMatch(/first-try|second-try|typo/);
    expect(plain).toContain('**********');
  });
});
