/**
 * No private key is ever committed (issue #27 item 1: the lab's client key once was). Every file
 * git tracks is read: a PEM private-key block, a PKCS#12 file or a key-ish file name fails the
 * suite unless it lies under test/fixtures/keys/, the one place named for throwaway test keys.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const root = path.join(__dirname, '..', '..');
const ALLOWED_DIR = 'test/fixtures/keys/';
const KEY_NAME = /\.(key|pem|p12|pfx|csr|crt)$/i;
// A whole block (BEGIN line, base64 body, END line), not code that names the marker in a string.
const PEM_KEY = /-----BEGIN ((?:RSA |EC |DSA |ENCRYPTED |OPENSSH )?PRIVATE KEY)-----\r?\n(?:[A-Za-z0-9+/=:, -]*\r?\n)*?[A-Za-z0-9+/=]{40,}\r?\n[\s\S]*?-----END \1-----/;

/** Offending tracked paths with the reason, given path → content. */
export function keyMaterial(files: Array<{ path: string; content: Buffer }>): string[] {
  const out: string[] = [];
  for (const f of files) {
    if (f.path.startsWith(ALLOWED_DIR)) continue;
    if (KEY_NAME.test(f.path)) out.push(`${f.path}: a key or certificate file name`);
    else if (PEM_KEY.test(f.content.toString('latin1'))) out.push(`${f.path}: holds a PEM private key`);
    // PKCS#12 is DER: SEQUENCE, version INTEGER 3, then the authSafe's pkcs7-data OID.
    else if (f.content.length > 16 && f.content[0] === 0x30 && f.content.subarray(0, 32).includes(Buffer.from([0x02, 0x01, 0x03, 0x30])) && f.content.includes(Buffer.from('06092a864886f70d010701', 'hex'))) out.push(`${f.path}: a PKCS#12 file`);
  }
  return out;
}

function tracked(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
}

describe('key material in the repository', () => {
  it('git tracks no private key, certificate or PKCS#12 file outside test/fixtures/keys/', () => {
    const files = tracked().filter((p) => fs.existsSync(path.join(root, p))).map((p) => ({ path: p, content: fs.readFileSync(path.join(root, p)) }));
    expect(files.length).toBeGreaterThan(100);
    expect(keyMaterial(files)).toEqual([]);
  });

  it('the check finds a key block, a key file name and a PKCS#12 file, and lets code that names the marker pass', () => {
    const body = 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n';
    const pem = `-----BEGIN RSA PRIVATE KEY-----\n${body}${body}-----END RSA PRIVATE KEY-----\n`;
    const p12 = Buffer.concat([Buffer.from('3082040a020103308203d006092a864886f70d010701', 'hex'), Buffer.alloc(64)]);
    expect(keyMaterial([
      { path: 'src/a.ts', content: Buffer.from(`const k = \`${pem}\`;`) },
      { path: 'before-kill.key', content: Buffer.from('x') },
      { path: 'x/client.bin', content: p12 },
      { path: 'src/b.ts', content: Buffer.from("if (pem.includes('-----BEGIN PRIVATE KEY-----')) return 'pkcs8';") },
      { path: `${ALLOWED_DIR}ca.key`, content: Buffer.from(pem) },
    ])).toEqual(['src/a.ts: holds a PEM private key', 'before-kill.key: a key or certificate file name', 'x/client.bin: a PKCS#12 file']);
  });
});
