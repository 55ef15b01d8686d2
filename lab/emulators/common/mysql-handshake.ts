import * as crypto from 'crypto';
import { CLIENT, packet, readLenencInt, readNulStr, SERVER_STATUS_AUTOCOMMIT } from './mysql-packets';

/**
 * The connection phase as TiDB does it (pingcap/tidb pkg/server/conn.go writeInitialHandshake,
 * readOptionalSSLRequestAndHandshakeResponse; pkg/server/internal/parse HandshakeResponseHeader/Body):
 * protocol v10 greeting with a 20-byte salt and `mysql_native_password`, protocol 41 responses only.
 */
export function newSalt(): Buffer {
  // TiDB's RandomBuf: printable, no NUL (clients treat the salt as a C string).
  return Buffer.from(crypto.randomBytes(20).map((b) => (b % 94) + 33));
}

export function initialHandshake(serverVersion: string, connId: number, salt: Buffer, capability: number): Buffer {
  const id = Buffer.alloc(4);
  id.writeUInt32LE(connId >>> 0);
  const status = Buffer.alloc(2);
  status.writeUInt16LE(SERVER_STATUS_AUTOCOMMIT);
  return packet(0, Buffer.concat([
    Buffer.from([10]),
    Buffer.from(serverVersion + '\0', 'latin1'),
    id,
    salt.subarray(0, 8),
    Buffer.from([0]),
    Buffer.from([capability & 0xff, (capability >> 8) & 0xff]),
    Buffer.from([46]), // utf8mb4_bin, TiDB's DefaultCollationID
    status,
    Buffer.from([(capability >> 16) & 0xff, (capability >>> 24) & 0xff]),
    Buffer.from([salt.length + 1]),
    Buffer.alloc(10),
    salt.subarray(8),
    Buffer.from([0]),
    Buffer.from('mysql_native_password\0', 'latin1'),
  ]));
}

export interface HandshakeResponse {
  capability: number;
  collation: number;
  user: string;
  auth: Buffer;
  db: string;
  plugin: string;
}

/** Only the 32-byte header: an SSLRequest is exactly this (capability has CLIENT_SSL). */
export function parseHeader(p: Buffer): { capability: number; collation: number } | undefined {
  if (p.length < 32) return undefined;
  return { capability: p.readUInt32LE(0), collation: p[8] };
}

export function parseResponse(p: Buffer): HandshakeResponse | undefined {
  const h = parseHeader(p);
  if (!h) return undefined;
  let pos = 32;
  const [user, afterUser] = readNulStr(p, pos);
  pos = afterUser;
  let auth: Buffer;
  if (h.capability & CLIENT.PLUGIN_AUTH_LENENC) {
    const [n, at] = readLenencInt(p, pos);
    auth = p.subarray(at, at + n);
    pos = at + n;
  } else if (h.capability & CLIENT.SECURE_CONNECTION) {
    const n = p[pos] ?? 0;
    auth = p.subarray(pos + 1, pos + 1 + n);
    pos += 1 + n;
  } else {
    const [s, at] = readNulStr(p, pos);
    auth = Buffer.from(s, 'latin1');
    pos = at;
  }
  let db = '';
  if (h.capability & CLIENT.CONNECT_WITH_DB && pos < p.length) [db, pos] = readNulStr(p, pos);
  let plugin = '';
  if (h.capability & CLIENT.PLUGIN_AUTH && pos < p.length) [plugin] = readNulStr(p, pos);
  return { ...h, user, auth, db, plugin };
}

/** AuthSwitchRequest (conn.go authSwitchRequest): 0xfe, plugin name, salt, NUL. */
export function authSwitchPayload(salt: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0xfe]), Buffer.from('mysql_native_password\0', 'latin1'), salt, Buffer.from([0])]);
}

const sha1 = (...b: Buffer[]): Buffer => {
  const h = crypto.createHash('sha1');
  for (const x of b) h.update(x);
  return h.digest();
};

/** mysql_native_password check (pkg/parser/auth CheckScrambledPassword): empty password = empty response. */
export function checkNativePassword(password: string, salt: Buffer, response: Buffer): boolean {
  if (password === '') return response.length === 0;
  if (response.length !== 20) return false;
  const stage1 = sha1(Buffer.from(password, 'utf8'));
  const stage2 = sha1(stage1);
  const mask = sha1(salt, stage2);
  const got = Buffer.alloc(20);
  for (let i = 0; i < 20; i++) got[i] = response[i] ^ mask[i];
  return crypto.timingSafeEqual(sha1(got), stage2);
}
