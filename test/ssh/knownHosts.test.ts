import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  appendKnownHost,
  checkHostKey,
  fingerprintSha256,
  hashHostName,
  hostFieldMatches,
  keyBlobType,
  knownHostsName,
  knownKeyTypes,
  parseKnownHosts,
  readKnownHosts,
} from '../../src/ssh/knownHosts';
import { hostKeyAlgorithms } from '../../src/ssh/connect';

let dir: string;
const pubs: Record<string, { line: string; blob: Buffer; file: string }> = {};

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-kh-'));
  for (const [name, type] of [['a', 'ed25519'], ['b', 'ed25519'], ['r', 'rsa'], ['e', 'ecdsa']] as const) {
    const f = path.join(dir, name);
    execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-f', f]);
    const [t, b64] = fs.readFileSync(`${f}.pub`, 'utf8').trim().split(/\s+/);
    pubs[name] = { line: `${t} ${b64}`, blob: Buffer.from(b64, 'base64'), file: `${f}.pub` };
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

test('fingerprint matches ssh-keygen -l for every key type', () => {
  for (const k of Object.values(pubs)) {
    const fromTool = execFileSync('ssh-keygen', ['-E', 'sha256', '-lf', k.file]).toString().split(/\s+/)[1];
    expect(fingerprintSha256(k.blob)).toBe(fromTool);
  }
  expect(keyBlobType(pubs.a.blob)).toBe('ssh-ed25519');
  expect(keyBlobType(pubs.r.blob)).toBe('ssh-rsa');
  expect(keyBlobType(pubs.e.blob)).toBe('ecdsa-sha2-nistp256');
});

test('knownHostsName uses [host]:port except for port 22', () => {
  expect(knownHostsName('10.0.0.1', 22)).toBe('10.0.0.1');
  expect(knownHostsName('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
});

test('host patterns: lists, wildcards, negation, case-insensitive', () => {
  expect(hostFieldMatches('db1,10.0.0.1', '10.0.0.1')).toBe(true);
  expect(hostFieldMatches('db1,10.0.0.1', '10.0.0.2')).toBe(false);
  expect(hostFieldMatches('10.0.0.*', '10.0.0.7')).toBe(true);
  expect(hostFieldMatches('10.0.0.?', '10.0.0.17')).toBe(false);
  expect(hostFieldMatches('10.0.0.*,!10.0.0.7', '10.0.0.7')).toBe(false);
  expect(hostFieldMatches('!10.0.0.7', '10.0.0.8')).toBe(false); // a negation alone matches nothing
  expect(hostFieldMatches('DB1.Example.COM', 'db1.example.com')).toBe(true);
  expect(hostFieldMatches('[10.0.0.1]:2222', '[10.0.0.1]:2222')).toBe(true);
  expect(hostFieldMatches('[10.0.0.1]:2222', '10.0.0.1')).toBe(false);
  expect(hostFieldMatches('10.0.0.1', '[10.0.0.1]:2222')).toBe(false);
});

test('hashed entries produced by ssh-keygen -H match, plain names do not leak', () => {
  const f = path.join(dir, 'hashme');
  fs.writeFileSync(f, `[10.1.2.3]:2200 ${pubs.a.line}\n10.1.2.4 ${pubs.b.line}\n`);
  execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' });
  const text = fs.readFileSync(f, 'utf8');
  expect(text).not.toContain('10.1.2');
  const entries = parseKnownHosts(text);
  expect(checkHostKey(entries, '10.1.2.3', 2200, pubs.a.blob).status).toBe('ok');
  expect(checkHostKey(entries, '10.1.2.4', 22, pubs.b.blob).status).toBe('ok');
  expect(checkHostKey(entries, '10.1.2.3', 22, pubs.a.blob).status).toBe('unknown');
  expect(checkHostKey(entries, '10.1.2.4', 22, pubs.a.blob).status).toBe('changed');
  // Our own hashing agrees with OpenSSH's.
  const salt = Buffer.from(entries[0].patterns.split('|')[2], 'base64');
  expect(hashHostName('[10.1.2.3]:2200', salt)).toBe(entries[0].patterns);
});

test('decision table: ok, unknown, changed (same type only), revoked; markers and junk lines', () => {
  const text = [
    '# comment',
    '',
    `h1 ${pubs.a.line}`,
    `h1 ${pubs.r.line} a comment`,
    `h2 ${pubs.a.line}`,
    `@revoked * ${pubs.e.line}`,
    `@cert-authority *.example ${pubs.b.line}`,
    '@bogus h1 ssh-ed25519 AAAA',
    'h3 ssh-ed25519 not-base64!!',
    'truncated-line',
  ].join('\n');
  const e = parseKnownHosts(text, '/x/known_hosts');
  expect(e.map((x) => x.line)).toEqual([3, 4, 5, 6, 7]);
  expect(checkHostKey(e, 'h1', 22, pubs.a.blob)).toMatchObject({ status: 'ok', entry: { file: '/x/known_hosts', line: 3 } });
  expect(checkHostKey(e, 'h1', 22, pubs.r.blob)).toMatchObject({ status: 'ok', entry: { line: 4 } });
  expect(checkHostKey(e, 'h1', 22, pubs.b.blob)).toMatchObject({ status: 'changed', entries: [{ line: 3 }] });
  // A new key type for a known host is "unknown" (OpenSSH would ask), not "changed".
  expect(checkHostKey(e, 'h2', 22, pubs.r.blob)).toMatchObject({ status: 'unknown', otherTypes: ['ssh-ed25519'], others: [{ line: 5 }] });
  expect(checkHostKey(e, 'h9', 22, pubs.a.blob)).toEqual({ status: 'unknown', otherTypes: [], others: [] });
  expect(checkHostKey(e, 'anything', 22, pubs.e.blob)).toMatchObject({ status: 'revoked', entry: { line: 6 } });
  // cert-authority lines are not host keys.
  expect(checkHostKey(e, 'db.example', 22, pubs.b.blob).status).toBe('unknown');
  expect(knownKeyTypes(e, 'h1', 22)).toEqual(['ssh-ed25519', 'ssh-rsa']);
});

test('host key algorithms prefer the types already known', () => {
  expect(hostKeyAlgorithms([])[0]).toBe('ssh-ed25519');
  expect(hostKeyAlgorithms(['ssh-rsa']).slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  const all = hostKeyAlgorithms(['ecdsa-sha2-nistp256']);
  expect(all[0]).toBe('ecdsa-sha2-nistp256');
  expect(new Set(all).size).toBe(all.length);
});

test('appendKnownHost creates the file 0600 and its directory, and fixes a missing final newline', () => {
  const f = path.join(dir, 'new', 'deeper', 'known_hosts');
  appendKnownHost(f, '10.0.0.5', 2222, pubs.a.blob);
  expect(fs.statSync(f).mode & 0o777).toBe(0o600);
  expect(fs.readFileSync(f, 'utf8')).toBe(`[10.0.0.5]:2222 ${pubs.a.line}\n`);
  const g = path.join(dir, 'no-newline');
  fs.writeFileSync(g, `h1 ${pubs.a.line}`);
  appendKnownHost(g, 'h2', 22, pubs.b.blob);
  expect(fs.readFileSync(g, 'utf8')).toBe(`h1 ${pubs.a.line}\nh2 ${pubs.b.line}\n`);
  expect(readKnownHosts(g).map((x) => x.patterns)).toEqual(['h1', 'h2']);
  expect(readKnownHosts(path.join(dir, 'missing'))).toEqual([]);
  // OpenSSH reads what we wrote.
  expect(execFileSync('ssh-keygen', ['-F', '[10.0.0.5]:2222', '-f', f]).toString()).toContain(pubs.a.line);
});
