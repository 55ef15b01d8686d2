/**
 * MySQL wire encoding as TiDB writes it (pingcap/tidb pkg/server/conn.go writeOkWith, writeError,
 * writeEOF, writeColumnInfo; pkg/server/internal/column/column.go Dump; pkg/server/internal/dump).
 */
export const CLIENT = {
  LONG_PASSWORD: 0x1, FOUND_ROWS: 0x2, LONG_FLAG: 0x4, CONNECT_WITH_DB: 0x8, LOCAL_FILES: 0x80, PROTOCOL_41: 0x200,
  INTERACTIVE: 0x400, SSL: 0x800, TRANSACTIONS: 0x2000, SECURE_CONNECTION: 0x8000, MULTI_STATEMENTS: 0x10000,
  MULTI_RESULTS: 0x20000, PLUGIN_AUTH: 0x80000, CONNECT_ATTRS: 0x100000, PLUGIN_AUTH_LENENC: 0x200000,
  DEPRECATE_EOF: 0x1000000,
} as const;

/**
 * TiDB's defaultCapability (pkg/server/server.go) minus compression (not emulated); CLIENT_SSL is
 * added only when a TLS config is loaded.
 */
export const DEFAULT_CAPABILITY =
  CLIENT.LONG_PASSWORD | CLIENT.LONG_FLAG | CLIENT.CONNECT_WITH_DB | CLIENT.PROTOCOL_41 | CLIENT.TRANSACTIONS |
  CLIENT.SECURE_CONNECTION | CLIENT.FOUND_ROWS | CLIENT.MULTI_STATEMENTS | CLIENT.MULTI_RESULTS | CLIENT.LOCAL_FILES |
  CLIENT.CONNECT_ATTRS | CLIENT.PLUGIN_AUTH | CLIENT.INTERACTIVE | CLIENT.DEPRECATE_EOF;

export const SERVER_STATUS_AUTOCOMMIT = 0x0002;

export function packet(seq: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq & 0xff;
  return Buffer.concat([h, payload]);
}

export function lenencInt(n: number): Buffer {
  if (n < 251) return Buffer.from([n]);
  if (n < 0x10000) return Buffer.from([0xfc, n & 0xff, (n >> 8) & 0xff]);
  if (n < 0x1000000) return Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff]);
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export function lenencStr(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  return Buffer.concat([lenencInt(b.length), b]);
}

/** Reads a length-encoded integer at `pos`; returns [value, next position]. */
export function readLenencInt(buf: Buffer, pos: number): [number, number] {
  const first = buf[pos];
  if (first < 0xfb) return [first, pos + 1];
  if (first === 0xfc) return [buf.readUInt16LE(pos + 1), pos + 3];
  if (first === 0xfd) return [buf.readUIntLE(pos + 1, 3), pos + 4];
  return [Number(buf.readBigUInt64LE(pos + 1)), pos + 9];
}

export function readNulStr(buf: Buffer, pos: number): [string, number] {
  let end = buf.indexOf(0, pos);
  if (end < 0) end = buf.length;
  return [buf.subarray(pos, end).toString('utf8'), end + 1];
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

export function okPayload(o: { affectedRows?: number; lastInsertId?: number; status?: number; warnings?: number; header?: number } = {}): Buffer {
  return Buffer.concat([
    Buffer.from([o.header ?? 0x00]),
    lenencInt(o.affectedRows ?? 0),
    lenencInt(o.lastInsertId ?? 0),
    u16(o.status ?? SERVER_STATUS_AUTOCOMMIT),
    u16(o.warnings ?? 0),
  ]);
}

export function eofPayload(status = SERVER_STATUS_AUTOCOMMIT, warnings = 0): Buffer {
  return Buffer.concat([Buffer.from([0xfe]), u16(warnings), u16(status)]);
}

/** An error as TiDB's writeError sends it: code, '#' + SQLSTATE (protocol 41), message. */
export class MysqlError extends Error {
  constructor(readonly code: number, readonly sqlState: string, message: string) {
    super(message);
  }
}

/** pkg/errno + pkg/parser/mysql/state.go: the SQLSTATEs the emulator can emit. */
export const errors = {
  unknown: (msg: string): MysqlError => new MysqlError(1105, 'HY000', msg),
  accessDenied: (user: string, host: string, usingPassword: boolean): MysqlError =>
    new MysqlError(1045, '28000', `Access denied for user '${user}'@'${host}' (using password: ${usingPassword ? 'YES' : 'NO'})`),
  badDb: (db: string): MysqlError => new MysqlError(1049, '42000', `Unknown database '${db}'`),
  secureTransportRequired: (): MysqlError =>
    new MysqlError(3159, '08004', 'Connections using insecure transport are prohibited while --require_secure_transport=ON.'),
  pdServerTimeout: (reason: string): MysqlError => new MysqlError(9001, 'HY000', `PD server timeout: ${reason}`),
  tikvServerTimeout: (): MysqlError => new MysqlError(9002, 'HY000', 'TiKV server timeout'),
  regionUnavailable: (): MysqlError => new MysqlError(9005, 'HY000', 'Region is unavailable'),
};

export function errPayload(e: MysqlError): Buffer {
  const head = Buffer.alloc(3);
  head[0] = 0xff;
  head.writeUInt16LE(e.code, 1);
  return Buffer.concat([head, Buffer.from('#' + e.sqlState, 'latin1'), Buffer.from(e.message, 'utf8')]);
}

export const TYPE = { LONGLONG: 8, VAR_STRING: 253, BLOB: 252 } as const;

export interface Column {
  name: string;
  type: number;
  /** Column length as TiDB reports it (flen). */
  length?: number;
  table?: string;
  schema?: string;
}

/** Column definition 41 (column.Info.Dump). */
export function columnPayload(c: Column): Buffer {
  const charset = c.type === TYPE.LONGLONG ? 63 : 46; // binary / utf8mb4_bin
  const fixed = Buffer.alloc(13);
  fixed[0] = 0x0c;
  fixed.writeUInt16LE(charset, 1);
  fixed.writeUInt32LE(c.length ?? (c.type === TYPE.LONGLONG ? 1 : 65535), 3);
  fixed[7] = c.type;
  fixed.writeUInt16LE(c.type === TYPE.LONGLONG ? 0x81 : 0, 8); // NOT_NULL|BINARY for integer literals
  fixed[10] = 0;
  return Buffer.concat([
    lenencStr('def'), lenencStr(c.schema ?? ''), lenencStr(c.table ?? ''), lenencStr(c.table ?? ''),
    lenencStr(c.name), lenencStr(c.name), fixed,
  ]);
}

/** Text protocol row: NULL is 0xfb. */
export function rowPayload(values: (string | null)[]): Buffer {
  return Buffer.concat(values.map((v) => (v === null ? Buffer.from([0xfb]) : lenencStr(v))));
}

/** Splits a byte stream into MySQL packets (payload < 16 MiB: the emulator takes no larger statements). */
export class PacketReader {
  private buf = Buffer.alloc(0);
  push(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
  }
  next(): { seq: number; payload: Buffer } | undefined {
    if (this.buf.length < 4) return undefined;
    const len = this.buf.readUIntLE(0, 3);
    if (this.buf.length < 4 + len) return undefined;
    const seq = this.buf[3];
    const payload = this.buf.subarray(4, 4 + len);
    this.buf = this.buf.subarray(4 + len);
    return { seq, payload };
  }
  /** Bytes received after the last complete packet (the TLS ClientHello after an SSLRequest). */
  rest(): Buffer {
    const r = this.buf;
    this.buf = Buffer.alloc(0);
    return r;
  }
}
