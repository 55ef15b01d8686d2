import * as tls from 'tls';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateKeyPairSync } from 'crypto';
import { backupScanScript, judgeBackups } from '../../src/audit/backupScan';
import { caKeyDigests, caKeyScanScript, DEFAULT_SCAN_LIMITS, parseScan } from '../../src/audit/caKeyScan';
import { anonymousRefused, auditExitCode, Finding } from '../../src/commands/audit';

/** A throwaway self-signed server certificate for 127.0.0.1, made with the openssl CLI. */
function serverCert(dir: string) {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'c.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: fs.readFileSync(path.join(dir, 'k.pem')), cert: fs.readFileSync(path.join(dir, 'c.pem')) };
}

function serve(opts: tls.TlsOptions): Promise<{ port: number; close: () => void }> {
  const server = tls.createServer(opts, (s) => s.on('data', () => s.end('HTTP/1.0 200 OK\r\n\r\nhello')));
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as { port: number }).port, close: () => server.close() })));
}

describe('audit', () => {
  let dir: string;
  beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-audit-'))));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(['TLSv1.2', 'TLSv1.3'] as const)('tells a server that requires client certificates from one that does not (%s)', async (v) => {
    const { key, cert } = serverCert(dir);
    const open = await serve({ key, cert, minVersion: v, maxVersion: v });
    const strict = await serve({ key, cert, ca: cert, requestCert: true, rejectUnauthorized: true, minVersion: v, maxVersion: v });
    try {
      expect(await anonymousRefused('127.0.0.1', open.port, cert.toString())).toBe(false);
      expect(await anonymousRefused('127.0.0.1', strict.port, cert.toString())).toBe(true);
    } finally {
      open.close();
      strict.close();
    }
  });

  it('exit code: FAIL fails; WARN fails only with --fail-on warn', () => {
    const f = (level: Finding['level']): Finding => ({ check: 'tls', level, target: 't', evidence: 'e' });
    expect(auditExitCode([f('PASS'), f('WARN')], 'fail')).toBe(0);
    expect(auditExitCode([f('PASS'), f('WARN')], 'warn')).toBe(1);
    expect(auditExitCode([f('PASS'), f('FAIL')], 'fail')).toBe(1);
    expect(auditExitCode([f('PASS')], 'warn')).toBe(0);
  });
});

describe('audit host scans, run by bash on this machine against a temp tree', () => {
  let root: string;
  beforeAll(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-audit-scan-'))));
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
  const bash = (script: string) => execFileSync('bash', ['-s'], { input: script, maxBuffer: 64 << 20 }).toString('latin1');

  it.each(['ec', 'rsa', 'ed25519'] as const)('finds the CA key (%s) copied verbatim, with CRLF, as PKCS#8 PEM and as DER, and nothing else; no key bits in the script', (type) => {
    const dir = fs.mkdtempSync(path.join(root, `${type}-`));
    const gen = (t: typeof type) => (t === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-384' }) : t === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 }) : generateKeyPairSync('ed25519')).privateKey;
    const key = gen(type);
    const caPem = key.export({ type: type === 'ed25519' ? 'pkcs8' : type === 'rsa' ? 'pkcs1' : 'sec1', format: 'pem' }).toString();
    const other = gen(type).export({ type: 'pkcs8', format: 'pem' }).toString();
    const plant = (rel: string, content: string | Buffer) => {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), content);
    };
    plant('etc/ssl/private/ca.key', caPem);
    plant('var/lib/misc/old notes.txt', `kept just in case\r\n${caPem.replace(/\n/g, '\r\n')}`);
    plant('srv/a/b/c/pkcs8.pem', key.export({ type: 'pkcs8', format: 'pem' }).toString());
    plant('data/tikv/.k', key.export({ type: 'pkcs8', format: 'der' }));
    plant('etc/other.key', other);
    plant('etc/cert.pem', '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');
    const digests = caKeyDigests(caPem);
    const script = caKeyScanScript([dir, path.join(dir, 'data')], digests.derSizes);
    const body = caPem.split('\n').filter((l) => l && !l.startsWith('-----')).join('');
    for (let i = 0; i + 12 <= body.length; i += 12) expect(script).not.toContain(body.slice(i, i + 12));
    for (const d of digests.digests) expect(script).not.toContain(d);
    const scan = parseScan(bash(script), digests);
    const rel = scan.found.map((f) => path.relative(dir, f));
    // pkcs8.pem and the DER copy are found by key DER (openssl pkey on the host, or the size rule)
    expect(rel).toEqual(['data/tikv/.k', 'etc/ssl/private/ca.key', 'srv/a/b/c/pkcs8.pem', 'var/lib/misc/old notes.txt']);
    expect(scan.timedOut || scan.truncated).toBe(false);
    expect(scan.candidates).toBeGreaterThanOrEqual(5);
  });

  it('reports a bound that was hit (candidate count)', () => {
    const dir = fs.mkdtempSync(path.join(root, 'many-'));
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    for (let i = 0; i < 4; i++) fs.writeFileSync(path.join(dir, `k${i}.pem`), generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const scan = parseScan(bash(caKeyScanScript([dir], [], { ...DEFAULT_SCAN_LIMITS, maxFiles: 2 })), caKeyDigests(pem));
    expect(scan).toMatchObject({ truncated: true, found: [] });
  });

  it('backups: a key 0644 or in a 0755 dir fails, 0600 in 0700 passes, certificates are not key material', () => {
    const deploy = fs.mkdtempSync(path.join(root, 'deploy-'));
    const mk = (d: string, mode: number) => {
      fs.mkdirSync(path.join(deploy, d), { recursive: true });
      fs.chmodSync(path.join(deploy, d), mode);
    };
    const put = (f: string, content: string, mode: number) => {
      fs.writeFileSync(path.join(deploy, f), content);
      fs.chmodSync(path.join(deploy, f), mode);
    };
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    mk('backup', 0o700);
    mk('backup/tiseal-good/tls', 0o700);
    mk('backup/tiseal-good', 0o700);
    put('backup/tiseal-good/tls/pd.pem', pem, 0o600);
    put('backup/tiseal-good/tls/pd.crt', '-----BEGIN CERTIFICATE-----\n', 0o644);
    mk('backup/tiseal-bad/tls', 0o755);
    mk('backup/tiseal-bad', 0o700);
    put('backup/tiseal-bad/tls/pd.pem', pem, 0o644);
    put('backup/tiseal-bad/master.key', `${'ab'.repeat(32)}\n`, 0o600);
    const me = os.userInfo().username;
    const r = judgeBackups(bash(backupScanScript([deploy, path.join(root, 'absent')])), [me]);
    expect(r.keys.map((k) => path.relative(deploy, k))).toEqual(['backup/tiseal-bad/master.key', 'backup/tiseal-bad/tls/pd.pem', 'backup/tiseal-good/tls/pd.pem']);
    expect(r.problems.map((p) => [path.relative(deploy, p.file), p.why.replace(deploy, '<d>')])).toEqual([
      ['backup/tiseal-bad/tls/pd.pem', 'mode 0644, in <d>/backup/tiseal-bad/tls (mode 0755)'],
    ]);
    // owners other than the allowed ones fail too
    expect(judgeBackups(bash(backupScanScript([deploy])), ['tidb']).problems.map((p) => path.relative(deploy, p.file))).toEqual(['backup/tiseal-bad/master.key', 'backup/tiseal-bad/tls/pd.pem', 'backup/tiseal-good/tls/pd.pem']);
  });
});
