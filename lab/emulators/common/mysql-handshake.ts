import * as crypto from 'crypto';
import * as net from 'net';

/**
 * Enough of the MySQL wire protocol for a client to see TiDB is there: the v10 initial handshake
 * (server version "8.0.11-TiDB-<version>", mysql_native_password), then, after the client's
 * handshake response, an ERR packet saying the emulator runs no SQL.
 */
function packet(seq: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUIntLE(payload.length, 0, 3);
  h[3] = seq;
  return Buffer.concat([h, payload]);
}

export function initialHandshake(serverVersion: string, connId: number): Buffer {
  const salt = crypto.randomBytes(20).map((b) => (b % 94) + 33);
  const caps = 0x0001 | 0x0002 | 0x0004 | 0x0008 | 0x0200 | 0x2000 | 0x8000 | 0x10000 | 0x20000 | 0x80000 | 0x100000 | 0x200000;
  const parts = [
    Buffer.from([10]),
    Buffer.from(serverVersion + '\0', 'latin1'),
    (() => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(connId);
      return b;
    })(),
    salt.subarray(0, 8),
    Buffer.from([0]),
    Buffer.from([caps & 0xff, (caps >> 8) & 0xff]),
    Buffer.from([46]), // utf8mb4_bin
    Buffer.from([0x02, 0x00]), // SERVER_STATUS_AUTOCOMMIT
    Buffer.from([(caps >> 16) & 0xff, (caps >> 24) & 0xff]),
    Buffer.from([21]),
    Buffer.alloc(10),
    Buffer.concat([salt.subarray(8, 20), Buffer.from([0])]),
    Buffer.from('mysql_native_password\0', 'latin1'),
  ];
  return packet(0, Buffer.concat(parts));
}

export function errPacket(seq: number, code: number, message: string): Buffer {
  const head = Buffer.alloc(3);
  head[0] = 0xff;
  head.writeUInt16LE(code, 1);
  return packet(seq, Buffer.concat([head, Buffer.from('#HY000' + message, 'utf8')]));
}

export function createMysqlServer(serverVersion: string): net.Server {
  let nextId = 1;
  return net.createServer((sock) => {
    sock.on('error', () => sock.destroy());
    sock.write(initialHandshake(serverVersion, nextId++));
    sock.once('data', (d: Buffer) => {
      const seq = d.length >= 4 ? d[3] + 1 : 2;
      sock.end(errPacket(seq, 1105, 'tiseal emulator: TiDB SQL is not implemented'));
    });
  });
}
