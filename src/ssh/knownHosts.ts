/**
 * OpenSSH known_hosts: parsing, lookup and trust-on-first-use append.
 * Semantics follow sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT": comma-separated host patterns
 * (`*`, `?`, `!` negation, `[host]:port` for non-22 ports), hashed `|1|salt|hash` entries,
 * `@revoked` and `@cert-authority` markers.
 */
import { createHash, createHmac } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

export interface KnownHostLine {
  file: string;
  line: number; // 1-based
  marker?: 'revoked' | 'cert-authority';
  patterns: string; // the raw host field
  keyType: string; // as written on the line
  key: Buffer; // decoded key blob
}

export type HostKeyCheck =
  | { status: 'ok'; entry: KnownHostLine }
  /** `others`: keys of other types already recorded for this name (the host is not new). */
  | { status: 'unknown'; otherTypes: string[]; others: KnownHostLine[] }
  | { status: 'changed'; entries: KnownHostLine[] }
  | { status: 'revoked'; entry: KnownHostLine };

/** `host` for port 22, `[host]:port` otherwise: the name OpenSSH looks up and records. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's `SHA256:<base64 without padding>` fingerprint of a key blob. */
export function fingerprintSha256(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The algorithm name stored at the start of an SSH public key blob (e.g. `ssh-ed25519`). */
export function keyBlobType(blob: Buffer): string {
  if (blob.length < 4) return '';
  const len = blob.readUInt32BE(0);
  if (len > blob.length - 4) return '';
  return blob.subarray(4, 4 + len).toString('latin1');
}

export function parseKnownHosts(text: string, file = 'known_hosts'): KnownHostLine[] {
  const out: KnownHostLine[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostLine['marker'];
    if (fields[0].startsWith('@')) {
      const m = fields.shift()!;
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else continue; // unknown marker: OpenSSH ignores the line
    }
    if (fields.length < 3) continue;
    const [patterns, keyType, b64] = fields;
    if (!/^[A-Za-z0-9+/]+=*$/.test(b64)) continue;
    const key = Buffer.from(b64, 'base64');
    if (key.length === 0) continue;
    out.push({ file, line: i + 1, marker, patterns, keyType, key });
  }
  return out;
}

/** Glob match with `*` and `?`, case-insensitive like OpenSSH's match_pattern for host names. */
export function wildcardMatch(value: string, pattern: string): boolean {
  // Most lines name one host: no regex to build (a fan-out checks every line for every host).
  if (!/[*?]/.test(pattern)) return value.length === pattern.length && value.toLowerCase() === pattern.toLowerCase();
  const re = new RegExp(
    '^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$',
    'i',
  );
  return re.test(value);
}

function hashedMatch(entry: string, name: string): boolean {
  const parts = entry.split('|'); // ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = Buffer.from(parts[2], 'base64');
  const want = Buffer.from(parts[3], 'base64');
  const got = createHmac('sha1', salt).update(name).digest();
  return want.length === got.length && got.equals(want);
}

/**
 * Does the host field of a line apply to `name` (already in `[host]:port` form when needed)?
 * A matching negated pattern excludes the line whatever else matches.
 */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) return hashedMatch(field, name);
  let matched = false;
  for (const p of field.split(',')) {
    if (p === '') continue;
    if (p.startsWith('!')) {
      if (wildcardMatch(name, p.slice(1))) return false;
    } else if (wildcardMatch(name, p)) {
      matched = true;
    }
  }
  return matched;
}

/** Check a presented host key against known_hosts lines (OpenSSH's decision table). */
export function checkHostKey(entries: KnownHostLine[], host: string, port: number, keyBlob: Buffer): HostKeyCheck {
  const name = knownHostsName(host, port);
  const type = keyBlobType(keyBlob);
  const mine = entries.filter((e) => hostFieldMatches(e.patterns, name));
  const revoked = mine.find((e) => e.marker === 'revoked' && e.key.equals(keyBlob));
  if (revoked) return { status: 'revoked', entry: revoked };
  const plain = mine.filter((e) => e.marker === undefined);
  const same = plain.find((e) => e.key.equals(keyBlob));
  if (same) return { status: 'ok', entry: same };
  const sameType = plain.filter((e) => keyBlobType(e.key) === type);
  if (sameType.length > 0) return { status: 'changed', entries: sameType };
  return { status: 'unknown', otherTypes: [...new Set(plain.map((e) => keyBlobType(e.key)))], others: plain };
}

/** Key types recorded for a host: used to prefer those algorithms in the key exchange. */
export function knownKeyTypes(entries: KnownHostLine[], host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  return [
    ...new Set(
      entries.filter((e) => e.marker === undefined && hostFieldMatches(e.patterns, name)).map((e) => keyBlobType(e.key)),
    ),
  ];
}

const parsed = new Map<string, { stamp: string; entries: KnownHostLine[] }>();

/**
 * The file's lines, parsed again only when it changed (inode, size or mtime): every connect reads
 * it, twice, so a fan-out over N hosts would otherwise parse N lines N×2 times.
 */
export function readKnownHosts(file: string): KnownHostLine[] {
  let text: string;
  let stamp: string;
  try {
    const st = fs.statSync(file, { bigint: true });
    stamp = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
    const hit = parsed.get(file);
    if (hit && hit.stamp === stamp) return hit.entries;
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const entries = parseKnownHosts(text, file);
  parsed.set(file, { stamp, entries });
  return entries;
}

/** Append `name type base64` (trust on first use); creates the file 0600 (and its dir 0700). */
export function appendKnownHost(file: string, host: string, port: number, keyBlob: Buffer): string {
  const line = `${knownHostsName(host, port)} ${keyBlobType(keyBlob)} ${keyBlob.toString('base64')}`;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const cur = fs.readFileSync(file);
    if (cur.length > 0 && cur[cur.length - 1] !== 0x0a) prefix = '\n';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // O_APPEND with one write keeps concurrent appends from interleaving mid-line.
  fs.appendFileSync(file, `${prefix}${line}\n`, { mode: 0o600 });
  return line;
}

/** Hashed form of a host name as `ssh-keygen -H` writes it (used by tests and tooling). */
export function hashHostName(name: string, salt: Buffer): string {
  const h = createHmac('sha1', salt).update(name).digest('base64');
  return `|1|${salt.toString('base64')}|${h}`;
}
