/** Test helpers: the real openssl CLI, and temp dirs that are removed afterwards. */
import { execFile, spawnSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { nextTestRsaPem } from '../support/test-keys';

/** Run openssl synchronously (never while a server in this process must answer: that would deadlock). */
export function openssl(args: string[], opts: { cwd?: string; input?: string; allowFail?: boolean } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync('openssl', args, { cwd: opts.cwd, input: opts.input ?? '', encoding: 'utf8', timeout: 60_000 });
  const res = { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (res.code !== 0 && !opts.allowFail) throw new Error(`openssl ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
  return res;
}

/** Async variant for talking to a server that runs in this process. */
export function opensslAsync(args: string[], opts: { cwd?: string; input?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile('openssl', args, { cwd: opts.cwd, timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin?.end(opts.input ?? '');
  });
}

export class TempDir {
  readonly dir: string;
  constructor(prefix = 'tiseal-pki-') {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  }
  path(name: string): string {
    return path.join(this.dir, name);
  }
  write(name: string, content: string): string {
    const p = this.path(name);
    fs.writeFileSync(p, content);
    return p;
  }
  read(name: string): string {
    return fs.readFileSync(this.path(name), 'utf8');
  }
  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** openssl config with the extension sections the tests use (no dependence on the system openssl.cnf). */
export const OPENSSL_CNF = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_ca_nokeycertsign]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature
[v3_leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
[ca]
default_ca = test_ca
[test_ca]
dir = .
database = ./index.txt
new_certs_dir = ./newcerts
serial = ./serial
default_md = sha256
policy = pol
unique_subject = no
copy_extensions = none
[pol]
commonName = supplied
`;

export type OsslKey = 'rsa' | 'ec';
/**
 * `openssl req` arguments that give the request a new key written to `keyFile`. RSA keys come from
 * test/support/test-keys.ts (made once per machine: the prime search was most of these tests' CPU),
 * in the PKCS#8 form `-newkey rsa:2048 -keyout` writes; EC keys are cheap and made by openssl.
 */
function newkey(k: OsslKey, keyFile: string): string[] {
  if (k === 'ec') return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-keyout', keyFile];
  fs.writeFileSync(keyFile, nextTestRsaPem(), { mode: 0o600 });
  return ['-key', keyFile];
}

/** A self-signed certificate made by openssl alone: `openssl req -x509 -newkey …`. */
export function opensslSelfSigned(t: TempDir, stem: string, cn: string, opts: { key?: OsslKey; ext?: string; days?: number } = {}): { cert: string; key: string } {
  const cnf = t.write('openssl.cnf', OPENSSL_CNF);
  openssl(['req', '-x509', ...newkey(opts.key ?? 'rsa', t.path(`${stem}.key`)), '-nodes', '-config', cnf, '-extensions', opts.ext ?? 'v3_ca', '-subj', `/CN=${cn}`,
    '-days', String(opts.days ?? 30), '-out', t.path(`${stem}.crt`)], { cwd: t.dir });
  return { cert: t.read(`${stem}.crt`), key: t.read(`${stem}.key`) };
}

/** An intermediate CA signed by `parentStem` with openssl x509 -req. */
export function opensslIntermediate(t: TempDir, stem: string, cn: string, parentStem: string, key: OsslKey = 'rsa'): { cert: string; key: string } {
  const cnf = t.write('openssl.cnf', OPENSSL_CNF);
  openssl(['req', '-new', ...newkey(key, t.path(`${stem}.key`)), '-nodes', '-config', cnf, '-subj', `/CN=${cn}`, '-out', t.path(`${stem}.csr`)], { cwd: t.dir });
  openssl(['x509', '-req', '-in', t.path(`${stem}.csr`), '-CA', t.path(`${parentStem}.crt`), '-CAkey', t.path(`${parentStem}.key`), '-CAcreateserial',
    '-days', '30', '-extfile', cnf, '-extensions', 'v3_ca', '-out', t.path(`${stem}.crt`)], { cwd: t.dir });
  return { cert: t.read(`${stem}.crt`), key: t.read(`${stem}.key`) };
}

/** A self-signed CA with an explicit validity window (`YYYYMMDDHHMMSSZ`), via `openssl ca -selfsign -startdate/-enddate`. */
export function opensslCaWindow(t: TempDir, stem: string, cn: string, startdate: string, enddate: string): { cert: string; key: string } {
  const cnf = t.write('openssl.cnf', OPENSSL_CNF);
  fs.mkdirSync(t.path('newcerts'), { recursive: true });
  fs.writeFileSync(t.path('index.txt'), '');
  fs.writeFileSync(t.path('serial'), '1000\n');
  openssl(['req', '-new', ...newkey('rsa', t.path(`${stem}.key`)), '-nodes', '-config', cnf, '-subj', `/CN=${cn}`, '-out', t.path(`${stem}.csr`)], { cwd: t.dir });
  openssl(['ca', '-batch', '-selfsign', '-config', cnf, '-keyfile', t.path(`${stem}.key`), '-in', t.path(`${stem}.csr`), '-out', t.path(`${stem}.crt`),
    '-startdate', startdate, '-enddate', enddate, '-extensions', 'v3_ca', '-notext'], { cwd: t.dir });
  return { cert: t.read(`${stem}.crt`), key: t.read(`${stem}.key`) };
}

export const modeOf = (p: string): number => fs.statSync(p).mode & 0o777;
