/**
 * tiseal lab EMULATOR of drainer (TiDB Binlog; test equipment, not the real component). See README.md.
 * pingcap/tidb-binlog drainer/config.go (flags, strict drainer.toml, [security]), drainer/server.go
 * NewServer (PD client, TSO, checkpoint at the downstream) and Start (register in etcd, then listen),
 * cmd/drainer/main.go (exit codes). Only the `file` downstream (and a reachable MySQL/TiDB port) is
 * emulated; no binlog is pulled from the pumps.
 */
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import { flagString, FlagSpec } from './common/flags';
import { Logger } from './common/log';
import { bootTimeoutMs, onShutdown } from './common/process';
import { metricsText } from './common/status-http';
import type { TlsPaths } from './common/tls';
import { ConfigError, getNumber, getString, Schema } from './common/toml';
import { bootBinlogNode, json, parsePdUrls, PdFacts, Security, reachPd, registerNode, securityOf, SECURITY_SCHEMA, serveBinlogPort, toTlsConfig } from './binlog/node';

// drainer/config.go NewConfig (Go flag package).
const FLAGS: FlagSpec[] = [
  ...['node-id', 'addr', 'advertise-addr', 'data-dir', 'detect-interval', 'pd-urls', 'L', 'config', 'metrics-addr', 'metrics-interval', 'log-file',
    'initial-commit-ts', 'compressor', 'txn-batch', 'channel-id', 'ignore-schemas', 'c', 'dest-db-type', 'relay-log-dir', 'relay-max-file-size',
    'cache-binlog-count', 'synced-check-time', 'log-rotate'].map((name) => ({ name })),
  ...['V', 'loopback-control', 'sync-ddl', 'disable-dispatch', 'enable-dispatch', 'safe-mode', 'disable-detect', 'enable-detect', 'load-schema-snapshot']
    .map((name) => ({ name, bool: true })),
];

// drainer.Config's toml tags; [syncer] is checked by the real decoder too, but tiseal never writes it.
const SCHEMA: Schema = {
  'log-level': true, 'node-id': true, addr: true, 'advertise-addr': true, 'data-dir': true, 'detect-interval': true, 'pd-urls': true,
  'log-file': true, 'initial-commit-ts': true, syncer: 'any', security: SECURITY_SCHEMA, 'synced-check-time': true, compressor: true,
};

function tcpReachable(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: timeoutMs });
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('timeout', () => {
      s.destroy();
      resolve(`dial tcp ${host}:${port}: i/o timeout`);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(`dial tcp ${host}:${port}: connect: ${e.code === 'ECONNREFUSED' ? 'connection refused' : e.message}`));
  });
}

async function main(): Promise<void> {
  const b = bootBinlogNode('drainer', FLAGS, SCHEMA, "verifying flags failed, See 'drainer --help'.");
  if (!b) return;
  const { version, raw, opt, flags } = b;
  const fatalFlags: (err: string) => never = b.fatalFlags; // annotated: TS narrows only on declared never-returning calls
  let sec: Security;
  let paths: TlsPaths | undefined;
  let pdUrls: string[] = [];
  let dbType = 'mysql';
  let to = { host: 'localhost', port: 3306 };
  const listenAddr = opt('addr') ?? '127.0.0.1:8249';
  const advertiseAddr = opt('advertise-addr') || listenAddr;
  try {
    sec = securityOf(raw);
    paths = toTlsConfig(sec);
    pdUrls = parsePdUrls(opt('pd-urls') ?? 'http://127.0.0.1:2379');
    dbType = flagString(flags, 'dest-db-type') ?? getString(raw, 'syncer.db-type') ?? dbType;
    to = { host: getString(raw, 'syncer.to.host') ?? to.host, port: getNumber(raw, 'syncer.to.port') ?? to.port };
  } catch (e) {
    fatalFlags(e instanceof ConfigError && /^URL /.test(e.message) ? `parse EtcdURLs error: ${opt('pd-urls')}, ${e.message}` : (e as Error).message);
  }
  if (!['file', 'mysql', 'tidb'].includes(dbType)) fatalFlags(`tiseal emulator: syncer.db-type "${dbType}" is not emulated (file, mysql, tidb)`);
  const log: Logger = new Logger('drainer', opt('log-file'));
  log.info('Welcome to Drainer [tiseal emulator]', { 'Release Version': version.text, tls: !!paths });
  const nodeId = opt('node-id') || `${os.hostname()}:${/:(\d+)$/.exec(listenAddr)?.[1] ?? '8249'}`;

  let pd: PdFacts;
  try {
    pd = await reachPd(pdUrls, paths, Date.now() + bootTimeoutMs(), log);
  } catch (e) {
    log.fatal('create drainer server failed', { error: (e as Error).message });
  }
  log.info('get cluster id from pd', { id: pd.clusterId.toString() });
  // The mysql/tidb checkpoint lives at the downstream: NewCheckPoint opens it or the server is not created.
  if (dbType !== 'file') {
    const err = await tcpReachable(to.host, to.port, 3000);
    if (err) log.fatal('create drainer server failed', { error: err });
  }
  const status = { nodeId, host: advertiseAddr, state: 'online', isAlive: true, score: 0, label: null, maxCommitTS: pd.ts, updateTS: pd.ts };
  // Start: register in etcd first (a failure exits 2), then the port.
  try {
    await registerNode(pdUrls, paths, 'drainers', status, log);
  } catch (e) {
    log.error('start drainer server failed', { error: (e as Error).message });
    process.exit(2);
  }
  log.info('register success', { 'drainer node id': nodeId });
  const handler: http.RequestListener = (req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && p === '/status') json(res, 200, { PumpPos: {}, Synced: true, LastTS: pd.ts, TsMap: '' });
    else if (p === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metricsText('binlog_drainer', version.text));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('404 page not found\n');
    }
  };
  let srv;
  try {
    srv = await serveBinlogPort(listenAddr, paths, sec.allowedCN, handler, log);
  } catch (e) {
    log.error('start drainer server failed', { error: `fail to start tcp on ${listenAddr}: ${(e as Error).message}` });
    process.exit(2);
  }
  log.info('start to server request', { addr: `${paths ? 'https' : 'http'}://${advertiseAddr}` });
  onShutdown(log, () => {
    srv.close();
  });
}

main().catch((e) => {
  process.stderr.write(`[FATAL] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
