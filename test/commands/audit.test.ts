import * as tls from 'tls';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
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
