import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { ConfigError, getString, lookup, Table, typeError, isTable } from '../common/toml';
import { Version, versionAtLeast } from '../common/version';

/**
 * TiKV encryption at rest, as far as it shows from outside: the config rules, the master key file
 * format, and the "key dictionary" that only the master key that wrote it can open. The emulator's
 * `<data-dir>/key.dict` holds a marker sealed with AES-256-GCM under the file master key (or a
 * plaintext record), so opening it with another key fails for real, with TiKV's messages:
 * "Wrong master key error decrypt in GCM mode failed: …" / "Both master key failed, current key …,
 * previous key …" (previous-master-key defaults to plaintext, as in TiKV).
 */
export const METHODS = ['plaintext', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'sm4-ctr'];

export interface MasterKeyConfig {
  type: 'plaintext' | 'file' | 'kms';
  path: string;
}

export interface EncryptionConfig {
  method: string;
  masterKey: MasterKeyConfig;
  previousMasterKey: MasterKeyConfig;
}

export class EncryptionError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
  }
}

function masterKeyConfig(raw: Table, key: string): MasterKeyConfig {
  const v = lookup(raw, key);
  if (v === undefined) return { type: 'plaintext', path: '' };
  if (!isTable(v)) throw typeError(key, v, 'internally tagged enum MasterKeyConfig');
  const type = (v.type ?? 'plaintext') as string;
  if (!['plaintext', 'file', 'kms'].includes(type)) {
    throw new ConfigError(`unknown variant \`${type}\`, expected one of \`plaintext\`, \`file\`, \`kms\` for key \`${key}\``);
  }
  return { type: type as MasterKeyConfig['type'], path: getString(raw, `${key}.path`) ?? '' };
}

export function parseEncryption(raw: Table, version: Version): EncryptionConfig {
  const base = 'security.encryption';
  const m = getString(raw, `${base}.data-encryption-method`) ?? 'plaintext';
  const allowed = versionAtLeast(version, 'v6.3.0') ? METHODS : METHODS.filter((x) => x !== 'sm4-ctr');
  if (!allowed.includes(m.toLowerCase())) {
    throw new ConfigError(`invalid value: string ${JSON.stringify(m)}, expected a encryption method for key \`${base}.data-encryption-method\``);
  }
  return {
    method: m.toLowerCase(),
    masterKey: masterKeyConfig(raw, `${base}.master-key`),
    previousMasterKey: masterKeyConfig(raw, `${base}.previous-master-key`),
  };
}

interface Backend {
  kind: 'plaintext' | 'file';
  key?: Buffer;
}

/** TiKV's FileBackend::new checks, with its messages. */
export function readMasterKeyFile(file: string): Buffer {
  let content: Buffer;
  try {
    content = fs.readFileSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const msg = err.code === 'ENOENT' ? 'No such file or directory (os error 2)' : err.code === 'EACCES' ? 'Permission denied (os error 13)' : err.message;
    throw new EncryptionError(`IO error ${msg}`, 'KV:Encryption:Io');
  }
  if (content.length !== 65) {
    throw new EncryptionError(`Other error mismatch master key file size, expected 65, actual ${content.length}.`, 'KV:Unknown');
  }
  if (content[64] !== 0x0a) throw new EncryptionError('Other error master key file should end with newline.', 'KV:Unknown');
  const hex = content.subarray(0, 64).toString('latin1');
  const bad = /[^0-9a-fA-F]/.exec(hex);
  if (bad) {
    throw new EncryptionError(
      `Other error failed to decode master key from file: Invalid character ${JSON.stringify(bad[0]).replace(/"/g, "'")} at position ${bad.index}`,
      'KV:Unknown',
    );
  }
  return Buffer.from(hex, 'hex');
}

function createBackend(c: MasterKeyConfig): Backend {
  if (c.type === 'plaintext') return { kind: 'plaintext' };
  if (c.type === 'kms') throw new EncryptionError('Other error KMS master keys are not supported by the tiseal emulator', 'KV:Unknown');
  return { kind: 'file', key: readMasterKeyFile(c.path) };
}

const MARKER = Buffer.from('tiseal-emulator-key-dictionary');
const bytes = (s: string): string => `[${[...Buffer.from(s)].join(', ')}]`;

/**
 * The dictionary also holds the DATA key (TiKV's key dictionary holds the data keys the same way),
 * sealed together with the marker: after the marker, 32 random bytes. The region files
 * (raft-storage.ts) are encrypted with it, so rotating the master key re-seals the dictionary and
 * leaves the data alone, and without the master key the data cannot be read.
 */
interface Dict {
  method: 'plaintext' | 'aes256-gcm';
  iv?: string;
  tag?: string;
  content?: string;
  /** Plaintext master key only: the data key in the clear (TiKV's plaintext dictionary). */
  data_key?: string;
  data_method: string;
}

function seal(b: Backend, dataMethod: string, dataKey: Buffer): Dict {
  if (b.kind === 'plaintext') return { method: 'plaintext', data_key: dataKey.toString('hex'), data_method: dataMethod };
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', b.key!, iv);
  const content = Buffer.concat([c.update(Buffer.concat([MARKER, dataKey])), c.final()]);
  return { method: 'aes256-gcm', iv: iv.toString('base64'), tag: c.getAuthTag().toString('base64'), content: content.toString('base64'), data_method: dataMethod };
}

/** Throws the inner error text of TiKV's WrongMasterKey; returns the data key (a new one for a dictionary without). */
function open(b: Backend, d: Dict): Buffer {
  const want = b.kind === 'plaintext' ? 'plaintext' : 'aes256-gcm';
  if (d.method !== want) {
    throw new Error(`Wrong master key error encryption method mismatch, expected ${bytes(want)} vs actual ${bytes(d.method)}`);
  }
  if (b.kind === 'plaintext') return d.data_key ? Buffer.from(d.data_key, 'hex') : crypto.randomBytes(32);
  let out: Buffer;
  try {
    const dc = crypto.createDecipheriv('aes-256-gcm', b.key!, Buffer.from(d.iv!, 'base64'));
    dc.setAuthTag(Buffer.from(d.tag!, 'base64'));
    out = Buffer.concat([dc.update(Buffer.from(d.content!, 'base64')), dc.final()]);
  } catch {
    throw new Error('Wrong master key error decrypt in GCM mode failed: OpenSSL error');
  }
  if (!out.subarray(0, MARKER.length).equals(MARKER)) throw new Error('Wrong master key error decrypt in GCM mode failed: OpenSSL error');
  return out.length === MARKER.length + 32 ? out.subarray(MARKER.length) : crypto.randomBytes(32);
}

/** What the data files are written with: the dictionary's data key and the current method. */
export interface DataKey {
  method: string;
  key: Buffer;
}

export const DICT_FILE = 'key.dict';

/** data_key_manager_from_config: returns a log line on success, throws EncryptionError like TiKV's panic text. */
export function initEncryption(cfg: EncryptionConfig, dataDir: string): string {
  return openEncryption(cfg, dataDir).message;
}

/** initEncryption plus the data key (undefined: no dictionary, encryption never enabled here). */
export function openEncryption(cfg: EncryptionConfig, dataDir: string): { message: string; dataKey?: DataKey } {
  const file = path.join(dataDir, DICT_FILE);
  const exists = fs.existsSync(file);
  if (!exists && cfg.method === 'plaintext') return { message: 'encryption is disabled' };
  const current = createBackend(cfg.masterKey);
  const write = (d: Dict): void => {
    const tmp = `${file}.tmp-${process.pid}`;
    fs.writeFileSync(tmp, JSON.stringify(d) + '\n', { mode: 0o600 });
    fs.renameSync(tmp, file);
  };
  if (!exists) {
    fs.mkdirSync(dataDir, { recursive: true });
    const key = crypto.randomBytes(32);
    write(seal(current, cfg.method, key));
    return { message: `encryption: created key dictionary (method ${cfg.method}, master key ${cfg.masterKey.type})`, dataKey: { method: cfg.method, key } };
  }
  const dict = JSON.parse(fs.readFileSync(file, 'utf8')) as Dict;
  let key: Buffer;
  try {
    key = open(current, dict);
  } catch (eCur) {
    const previous = createBackend(cfg.previousMasterKey);
    try {
      key = open(previous, dict);
    } catch (ePrev) {
      throw new EncryptionError(
        `Both master key failed, current key ${(eCur as Error).message}, previous key ${(ePrev as Error).message}.`,
        'KV:Encryption:BothMasterKeyFail',
      );
    }
    // Opened with the previous key: rewrite under the current one (master key rotation); the data key stays.
    write(seal(current, cfg.method, key));
    return { message: 'encryption: persisted result after replace master key.', dataKey: { method: cfg.method, key } };
  }
  if (dict.data_method !== cfg.method || (dict.method === 'plaintext' ? !dict.data_key : Buffer.from(dict.content ?? '', 'base64').length !== MARKER.length + 32)) {
    write(seal(current, cfg.method, key));
  }
  return { message: `encryption: opened key dictionary (method ${cfg.method})`, dataKey: { method: cfg.method, key } };
}
