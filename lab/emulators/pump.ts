/**
 * tiseal lab EMULATOR of pump (TiDB Binlog; test equipment, not the real component). See README.md.
 * pingcap/tidb-binlog pump/config.go (flags, strict pump.toml, [security]), pump/server.go NewServer
 * (PD client, then the etcd node) and Start (listen, TSO, register in etcd, serve), cmd/pump/main.go
 * (exit codes).
 */
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import type { FlagSpec } from './common/flags';
import { Logger } from './common/log';
import { bootTimeoutMs, onShutdown } from './common/process';
import { metricsText } from './common/status-http';
import { splitHostPort, TlsPaths } from './common/tls';
import { ConfigError, Schema } from './common/toml';
import { bootBinlogNode, json, parsePdUrls, PdFacts, Security, reachPd, registerNode, securityOf, SECURITY_SCHEMA, serveBinlogPort, toTlsConfig } from './binlog/node';

// pump/config.go NewConfig (Go flag package: -flag and --flag, unknown → exit 2).
const FLAGS: FlagSpec[] = [
  ...['node-id', 'addr', 'advertise-addr', 'socket', 'pd-urls', 'data-dir', 'heartbeat-interval', 'gc', 'L', 'metrics-addr', 'metrics-interval',
    'config', 'log-file', 'fake-binlog-interval', 'max-message-size', 'binlog-file-size', 'binlog-slice-size', 'log-rotate'].map((name) => ({ name })),
  { name: 'V', bool: true }, { name: 'enable-debug', bool: true }, { name: 'enable-binlog-slice', bool: true },
];

// pump.Config's toml tags (util.StrictDecodeFile refuses anything else).
const SCHEMA: Schema = {
  'log-level': true, 'node-id': true, addr: true, 'advertise-addr': true, socket: true, 'pd-urls': true, 'data-dir': true,
  'heartbeat-interval': true, gc: true, 'log-file': true, security: SECURITY_SCHEMA, 'gen-binlog-interval': true, storage: 'any',
};

async function main(): Promise<void> {
  const b = bootBinlogNode('pump', FLAGS, SCHEMA, "verifying flags failed. See 'pump --help'.");
  if (!b) return;
  const { version, raw, opt } = b;
  const fatalFlags: (err: string) => never = b.fatalFlags; // annotated: TS narrows only on declared never-returning calls
  let sec: Security;
  let paths: TlsPaths | undefined;
  let pdUrls: string[] = [];
  const listenAddr = opt('addr') ?? '127.0.0.1:8250';
  const advertiseAddr = opt('advertise-addr') || listenAddr;
  try {
    sec = securityOf(raw);
    paths = toTlsConfig(sec);
    const adv = splitHostPort(advertiseAddr).host;
    if (!adv || adv === '0.0.0.0') throw new ConfigError(`invalid advertiseAddr host: ${adv}`);
    pdUrls = parsePdUrls(opt('pd-urls') ?? 'http://127.0.0.1:2379');
  } catch (e) {
    fatalFlags(e instanceof ConfigError && /^URL /.test(e.message) ? `parse EtcdURLs error: ${opt('pd-urls')}, ${e.message}` : (e as Error).message);
  }
  const log: Logger = new Logger('pump', opt('log-file'));
  log.info('Welcome to Pump [tiseal emulator]', { 'Release Version': version.text, tls: !!paths });

  let pd: PdFacts;
  try {
    pd = await reachPd(pdUrls, paths, Date.now() + bootTimeoutMs(), log);
  } catch (e) {
    log.fatal('creating pump server failed', { error: (e as Error).message });
  }
  log.info('get clusterID success', { clusterID: pd.clusterId.toString() });
  // pump/node.go: the node id is kept in <data-dir>/.node once chosen.
  const dataDir = opt('data-dir') ?? 'data.pump';
  fs.mkdirSync(dataDir, { recursive: true });
  const idFile = path.join(dataDir, '.node');
  const nodeId = fs.existsSync(idFile) ? fs.readFileSync(idFile, 'utf8').trim() : opt('node-id') || `${os.hostname()}:${splitHostPort(listenAddr).port}`;
  fs.writeFileSync(idFile, `${nodeId}\n`);

  const started = Date.now();
  const status = () => ({ nodeId, host: advertiseAddr, state: 'online', isAlive: true, score: 0, label: null, maxCommitTS: pd.ts, updateTS: pd.ts });
  const handler: http.RequestListener = (req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && p === '/status') json(res, 200, { status: { [nodeId]: status() }, CommitTS: pd.ts, CheckPoint: {}, ErrMsg: '' });
    else if (req.method === 'GET' && p === '/drainers') json(res, 200, []);
    else if (p === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metricsText('binlog_pump', version.text));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('404 page not found\n');
    }
  };
  // Start: the register step comes before the port serves; a failure exits 2 (cmd/pump/main.go).
  try {
    await registerNode(pdUrls, paths, 'pumps', status(), log);
  } catch (e) {
    log.error('start pump server failed', { error: `fail to register node to etcd: ${(e as Error).message}` });
    process.exit(2);
  }
  log.info('register success', { NodeID: nodeId });
  let srv;
  try {
    srv = await serveBinlogPort(listenAddr, paths, sec.allowedCN, handler, log);
  } catch (e) {
    log.error('start pump server failed', { error: `fail to start tcp on ${listenAddr}: ${(e as Error).message}` });
    process.exit(2);
  }
  log.info('start to server request', { addr: `${paths ? 'https' : 'http'}://${advertiseAddr}`, startupMs: Date.now() - started });
  onShutdown(log, () => {
    srv.close();
  });
}

main().catch((e) => {
  process.stderr.write(`[FATAL] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
