import * as net from 'net';
import { Duplex } from 'stream';
import * as tls from 'tls';
import type { Logger } from './log';
import { authSwitchPayload, checkNativePassword, initialHandshake, newSalt, parseHeader, parseResponse } from './mysql-handshake';
import {
  CLIENT, columnPayload, DEFAULT_CAPABILITY, eofPayload, errPayload, errors, lenencInt, MysqlError, okPayload, packet, PacketReader,
  rowPayload,
} from './mysql-packets';
import { execute, knownDb, SqlContext, SqlResult, SqlSession } from './mysql-sql';
import type { MysqlTlsConfig } from './mysql-tls';

/**
 * The MySQL port of the TiDB emulator (pingcap/tidb pkg/server/conn.go): greeting, optional
 * SSLRequest → TLS upgrade (upgradeToTLS), require-secure-transport refusal (3159), user `root` with
 * mysql_native_password, then COM_QUERY / COM_PING / COM_INIT_DB / COM_QUIT; other commands get
 * TiDB's "command %d not supported now".
 */
export interface MysqlServerOptions {
  serverVersion: string;
  log: Logger;
  /** root's password, read per login ('' = none). */
  rootPassword: () => string;
  /** Whether CLIENT_SSL is offered: decided once at start, like TiDB's s.capability. */
  offerSsl: boolean;
  ctx: Omit<SqlContext, 'sessions'>;
}

const COM = { QUIT: 1, INIT_DB: 2, QUERY: 3, PING: 14 } as const;

export function createMysqlServer(o: MysqlServerOptions): net.Server & { sessions: Map<number, SqlSession> } {
  let nextId = 1;
  const sessions = new Map<number, SqlSession>();
  const capability = DEFAULT_CAPABILITY | (o.offerSsl ? CLIENT.SSL : 0);
  const ctx: SqlContext = { ...o.ctx, sessions: () => [...sessions.values()] };

  const server = net.createServer((raw) => {
    raw.on('error', () => raw.destroy());
    const id = nextId++;
    void serve(raw, id).catch(() => raw.destroy()).finally(() => sessions.delete(id));
  });

  async function serve(raw: net.Socket, id: number): Promise<void> {
    let stream: Duplex = raw;
    let secure: tls.TLSSocket | undefined;
    const reader = new PacketReader();
    let waiter: ((e?: Error) => void) | undefined;
    let closed: Error | undefined;
    const onData = (d: Buffer): void => {
      reader.push(d);
      waiter?.();
    };
    const onEnd = (): void => {
      closed = new Error('connection closed by client');
      waiter?.(closed);
    };
    const attach = (s: Duplex): void => {
      s.on('data', onData);
      s.on('end', onEnd);
      s.on('close', onEnd);
      s.on('error', (e: Error) => {
        closed = e;
        waiter?.(e);
      });
    };
    attach(raw);
    const read = async (): Promise<{ seq: number; payload: Buffer }> => {
      for (;;) {
        const p = reader.next();
        if (p) return p;
        if (closed) throw closed;
        await new Promise<void>((resolve, reject) => {
          waiter = (e) => {
            waiter = undefined;
            if (e) reject(e);
            else resolve();
          };
        });
      }
    };
    const write = (seq: number, payload: Buffer): void => {
      stream.write(packet(seq, payload));
    };
    const fail = (seq: number, e: MysqlError): void => {
      write(seq, errPayload(e));
    };

    const salt = newSalt();
    raw.write(initialHandshake(o.serverVersion, id, salt, capability));
    let pkt = await read();
    const hdr = parseHeader(pkt.payload);
    if (!hdr || !(hdr.capability & CLIENT.PROTOCOL_41)) {
      fail(pkt.seq + 1, new MysqlError(1251, '08004', 'Client does not support authentication protocol requested by server; consider upgrading MySQL client'));
      stream.end();
      return;
    }
    const tlsCfg = o.ctx.currentTls();
    if (hdr.capability & CLIENT.SSL && tlsCfg) {
      secure = await upgrade(raw, reader.rest(), tlsCfg, onData);
      stream = secure;
      raw.off('data', onData);
      raw.off('end', onEnd);
      raw.off('close', onEnd);
      attach(secure);
      pkt = await read();
    } else if (!(hdr.capability & CLIENT.SSL) && o.ctx.requireSecureTransport()) {
      o.log.warn('[server:3159]Connections using insecure transport are prohibited while --require_secure_transport=ON.', { conn: id });
      fail(pkt.seq + 1, errors.secureTransportRequired());
      stream.end();
      return;
    }
    const resp = parseResponse(pkt.payload);
    if (!resp) {
      fail(pkt.seq + 1, new MysqlError(1835, '08S01', 'Malformed communication packet.'));
      stream.end();
      return;
    }
    let seq = pkt.seq + 1;
    let auth = resp.auth;
    const clientCaps = resp.capability & capability;
    if (resp.plugin && resp.plugin !== 'mysql_native_password' && clientCaps & CLIENT.PLUGIN_AUTH) {
      write(seq, authSwitchPayload(salt));
      const r = await read();
      auth = r.payload;
      seq = r.seq + 1;
    }
    const host = (raw.remoteAddress ?? '').replace(/^::ffff:/, '');
    if (resp.user !== 'root' || !checkNativePassword(o.rootPassword(), salt, auth)) {
      o.log.warn('Access denied', { conn: id, user: resp.user, host });
      fail(seq, errors.accessDenied(resp.user, host, auth.length > 0));
      stream.end();
      return;
    }
    if (resp.db && !knownDb(resp.db)) {
      fail(seq, errors.badDb(resp.db));
      stream.end();
      return;
    }
    const session: SqlSession = {
      id, user: resp.user, host, port: raw.remotePort ?? 0, db: resp.db, secure, command: 'Sleep', since: Date.now(), info: null, warnings: [],
    };
    sessions.set(id, session);
    write(seq, okPayload());
    const deprecateEof = (clientCaps & CLIENT.DEPRECATE_EOF) !== 0;

    for (;;) {
      const cmd = await read();
      const type = cmd.payload[0];
      const body = cmd.payload.subarray(1);
      let s = cmd.seq + 1;
      if (type === COM.QUIT) {
        stream.end();
        return;
      }
      if (type === COM.PING) {
        write(s, okPayload());
        continue;
      }
      if (type === COM.INIT_DB) {
        const db = body.toString('utf8').replace(/\0$/, '');
        if (!knownDb(db)) fail(s, errors.badDb(db));
        else {
          session.db = db;
          write(s, okPayload());
        }
        continue;
      }
      if (type !== COM.QUERY) {
        fail(s, errors.unknown(`command ${type} not supported now`));
        continue;
      }
      const sql = body.toString('utf8').replace(/\0$/, '');
      session.command = 'Query';
      session.info = sql;
      session.since = Date.now();
      let result: SqlResult;
      try {
        result = await execute(sql, session, ctx);
      } catch (e) {
        const err = e instanceof MysqlError ? e : errors.unknown((e as Error).message);
        o.log.info('command dispatched failed', { conn: id, sql, err: `[${err.code}]${err.message}` });
        fail(s, err);
        continue;
      } finally {
        session.command = 'Sleep';
        session.info = null;
        session.since = Date.now();
      }
      if (result.kind === 'ok') {
        write(s, okPayload({ affectedRows: result.affectedRows, warnings: result.warnings }));
        continue;
      }
      write(s++, lenencInt(result.columns.length));
      for (const c of result.columns) write(s++, columnPayload(c));
      if (!deprecateEof) write(s++, eofPayload());
      for (const r of result.rows) write(s++, rowPayload(r));
      write(s++, deprecateEof ? okPayload({ header: 0xfe }) : eofPayload());
    }
  }

  /**
   * TLS over the same TCP connection. Wrapped through a JS Duplex so bytes that arrived right after
   * the SSLRequest (the ClientHello) are not lost.
   */
  function upgrade(raw: net.Socket, rest: Buffer, cfg: MysqlTlsConfig, onRawData: (d: Buffer) => void): Promise<tls.TLSSocket> {
    raw.off('data', onRawData);
    const bridge = new Duplex({
      read() {
        raw.resume();
      },
      write(chunk: Buffer, _enc, cb) {
        raw.write(chunk, cb);
      },
      final(cb) {
        raw.end();
        cb();
      },
      destroy(err, cb) {
        raw.destroy();
        cb(err);
      },
    });
    if (rest.length) bridge.push(rest);
    raw.on('data', (d: Buffer) => {
      if (!bridge.push(d)) raw.pause();
    });
    raw.on('end', () => bridge.push(null));
    // A throwaway tls.Server so Node's own verification (authorized / rejectUnauthorized) applies.
    const srv = tls.createServer({ ...cfg.options, requestCert: cfg.requestCert, rejectUnauthorized: cfg.requireClientCert });
    return new Promise((resolve, reject) => {
      srv.once('secureConnection', (t: tls.TLSSocket) => {
        // VerifyClientCertIfGiven: a presented certificate must chain to ssl-ca.
        const presented = Object.keys(t.getPeerCertificate() ?? {}).length > 0;
        if (cfg.verifyClientCert && presented && !t.authorized) {
          o.log.warn('TLS handshake failed: bad client certificate', { error: String(t.authorizationError) });
          t.destroy();
          reject(new Error(`bad client certificate: ${String(t.authorizationError)}`));
          return;
        }
        resolve(t);
      });
      srv.once('tlsClientError', (e: Error) => {
        o.log.warn('TLS handshake failed', { error: e.message });
        raw.destroy();
        reject(e);
      });
      srv.emit('connection', bridge);
    });
  }

  return Object.assign(server, { sessions });
}
