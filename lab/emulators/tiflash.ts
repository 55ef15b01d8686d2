/**
 * tiseal lab EMULATOR of tiflash (test equipment, not the real TiFlash). See README.md.
 * `tiflash server --config-file conf/tiflash.toml`: the TiFlash server reads `[security]
 * ca_path/cert_path/key_path` (underscores; dashed keys are not TiFlash keys and are ignored), the
 * embedded proxy reads the learner file (`[flash.proxy] config`) with TiKV's dashed keys and rules.
 * The server must reach PD with its own TLS; the proxy registers the store (engine=tiflash) and
 * heartbeats with the learner's TLS. No port opens before both succeeded.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import type * as net from 'net';
import * as path from 'path';
import { sleep } from './common/http';
import { Logger } from './common/log';
import { PdClient } from './common/pd-client';
import { onShutdown } from './common/process';
import { createRpcServer } from './common/rpc-server';
import { metricsText, startStatusServer, TIKV_STATUS_CN_EXEMPT } from './common/status-http';
import { StoreHeartbeat } from './common/store-heartbeat';
import { ConfigError, getNumber, getString, getStringArray, getTable, loadTomlFile, lookup, Table } from './common/toml';
import { closeUnlessAllowedCN, listen, ServerTls, TlsPaths } from './common/tls';
import { EMULATOR_BUILD_TS, EMULATOR_GIT_BRANCH, EMULATOR_GIT_HASH, emulatedVersion, versionAtLeast } from './common/version';
import { validateSecurity } from './tikv/config';
import { EncryptionError, initEncryption, parseEncryption } from './tikv/encryption';

function printVersion(v: string): void {
  process.stdout.write(
    `TiFlash\nRelease Version: ${v}\nEdition:         Community\nGit Commit Hash: ${EMULATOR_GIT_HASH}\n` +
      `Git Branch:      ${EMULATOR_GIT_BRANCH}\nUTC Build Time:  ${EMULATOR_BUILD_TS}\nEnable Features: (tiseal emulator)\n` +
      `Profile:         RELWITHDEBINFO\n\nRaft Proxy\nGit Commit Hash:   ${EMULATOR_GIT_HASH}\nGit Commit Branch: ${EMULATOR_GIT_BRANCH}\n`,
  );
}

function fail(log: Logger, msg: string): never {
  log.fatal(`Application: DB::Exception: ${msg}`);
}

/** TiFlashSecurityConfig: keys present (and non-blank) decide; partial → exception. */
function tiflashSecurity(raw: Table, log: Logger): { paths?: TlsPaths; allowedCN: string[] } {
  const sec = lookup(raw, 'security');
  if (sec === undefined) return { allowedCN: [] };
  const get = (k: string): string => (getString(raw, `security.${k}`) ?? '').trim();
  const [ca, cert, key] = [get('ca_path'), get('cert_path'), get('key_path')];
  const allowedCN = getStringArray(raw, 'security.cert_allowed_cn') ?? [];
  if (!ca && !cert && !key) {
    log.info('No security config is set.');
    return { allowedCN };
  }
  if (!ca || !cert || !key) fail(log, 'ca_path, cert_path, key_path must be set at the same time.');
  return { paths: { ca, cert, key }, allowedCN };
}

async function server(argv: string[]): Promise<void> {
  const version = emulatedVersion();
  const boot = new Logger('tiflash');
  let configFile: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--config-file' || a === '-C') configFile = argv[++i];
    else if (a.startsWith('--config-file=')) configFile = a.slice('--config-file='.length);
    else if (a === '--') break;
    else fail(boot, `Unknown option specified: ${a.replace(/^-+/, '').split('=')[0]}`);
  }
  if (!configFile) fail(boot, 'config file is required: --config-file');
  let raw: Table;
  try {
    raw = loadTomlFile(configFile);
  } catch (e) {
    fail(boot, `Cannot load config file ${configFile}: ${(e as Error).message}`);
  }
  const log = new Logger('tiflash', getString(raw, 'logger.log'));
  log.info('Welcome to TiFlash [tiseal emulator]', { 'Release Version': version.text });
  const sec = tiflashSecurity(raw, log);

  const learnerPath = getString(raw, 'flash.proxy.config');
  let learner: Table = {};
  if (learnerPath) {
    try {
      learner = loadTomlFile(learnerPath);
    } catch (e) {
      fail(log, `proxy: invalid auto generated configuration file ${learnerPath}, err ${(e as Error).message}`);
    }
  }
  const learnerSec = {
    ca: getString(learner, 'security.ca-path') ?? '',
    cert: getString(learner, 'security.cert-path') ?? '',
    key: getString(learner, 'security.key-path') ?? '',
    allowedCN: getStringArray(learner, 'security.cert-allowed-cn') ?? [],
  };
  try {
    validateSecurity(learnerSec);
  } catch (e) {
    fail(log, `proxy: invalid configuration: ${(e as Error).message}`);
  }
  const learnerPaths: TlsPaths | undefined = learnerSec.ca ? { ca: learnerSec.ca, cert: learnerSec.cert, key: learnerSec.key } : undefined;
  if ((sec.paths || learnerPaths) && !versionAtLeast(version, 'v4.0.5')) {
    fail(log, `TLS is not supported by TiFlash ${version.text} (needs v4.0.5 or later)`);
  }

  const proxyDataDir = getString(raw, 'flash.proxy.data-dir') ?? path.join(getString(raw, 'path') ?? '.', 'flash');
  try {
    const enc = parseEncryption(learner, version);
    log.info(initEncryption(enc, proxyDataDir));
  } catch (e) {
    if (e instanceof EncryptionError) fail(log, `proxy: Encryption failed to initialize: ${e.message}. code: ${e.code}`);
    if (e instanceof ConfigError) fail(log, `proxy: invalid auto generated configuration file ${learnerPath}, err ${e.message}`);
    throw e;
  }

  const pdAddr = getString(raw, 'raft.pd_addr');
  if (!pdAddr) fail(log, 'raft.pd_addr is required');
  const endpoints = pdAddr.split(',').map((s) => s.trim()).filter(Boolean);

  let mainTls: ServerTls | undefined;
  let mainHttpTls: ServerTls | undefined;
  let proxyTls: ServerTls | undefined;
  let proxyStatusTls: ServerTls | undefined;
  try {
    if (sec.paths) {
      mainTls = new ServerTls({ paths: sec.paths, requireClientCert: true, reload: 'cert-mtime', reloadCA: true }, log);
      // https_port and the metrics port: Poco Context VERIFY_STRICT = a client certificate is
      // required (Server.cpp, MetricsPrometheus.cpp), and its CN is checked against cert_allowed_cn.
      mainHttpTls = new ServerTls({ paths: sec.paths, requireClientCert: true, reload: 'cert-mtime', reloadCA: true }, log);
    }
    if (learnerPaths) {
      // The proxy is TiKV's code: gRPC through security::Fetcher (cert mtime, per new connection);
      // its status server (tidb-engine-ext proxy_server/src/status_server) reloads only after a failed handshake.
      proxyTls = new ServerTls({ paths: learnerPaths, requireClientCert: true, reload: 'cert-mtime', reloadCA: true }, log);
      proxyStatusTls = new ServerTls(
        { paths: learnerPaths, requireClientCert: learnerSec.allowedCN.length > 0, reload: 'after-failed-handshake', reloadCA: true, mozillaModern: true },
        log,
      );
    }
  } catch (e) {
    fail(log, `failed to load TLS material: ${(e as Error).message}`);
  }
  const v71 = versionAtLeast(version, 'v7.1.0');
  // Before v7.1 (Server.cpp): with TLS the HTTP service must be on https_port; checked before any
  // port opens, so TiFlash exits and systemd restarts it.
  if (!v71 && sec.paths && lookup(raw, 'https_port') === undefined) {
    fail(log, 'tls config is set but https_port is not set ');
  }

  // The TiFlash server's own PD client (tiflash.toml TLS).
  const mainPd = new PdClient(endpoints, sec.paths);
  for (let attempt = 0; ; attempt++) {
    try {
      await mainPd.json('/pd/api/v1/members');
      break;
    } catch (e) {
      if (attempt % 10 === 0) log.error('TiFlash server cannot reach PD, retrying', { pd: pdAddr, error: (e as Error).message });
      await sleep(1000);
    }
  }

  const proxyAddr = getString(raw, 'flash.proxy.addr') ?? getString(learner, 'server.addr') ?? '0.0.0.0:20170';
  const proxyAdv = getString(raw, 'flash.proxy.advertise-addr') ?? getString(learner, 'server.advertise-addr') ?? proxyAddr;
  const statusAddr = getString(raw, 'flash.proxy.status-addr') ?? getString(learner, 'server.status-addr') ?? '0.0.0.0:20292';
  const statusAdv = getString(raw, 'flash.proxy.advertise-status-addr') ?? getString(learner, 'server.advertise-status-addr') ?? statusAddr;
  const labels = [{ key: 'engine', value: 'tiflash' }];
  /** A 0.0.0.0 listen address advertised with the proxy's host, as TiFlash does. */
  const advertiseOf = (listen: string, adv: string) => (listen.startsWith('0.0.0.0:') ? `${adv.replace(/:\d+$/, '')}:${listen.split(':').pop()}` : listen);
  for (const [k, v] of Object.entries(getTable(learner, 'server.labels') ?? {})) if (k !== 'engine') labels.push({ key: k, value: String(v) });
  const self = process.env.TISEAL_EMULATOR_SELF;
  const hb = new StoreHeartbeat({
    pd: new PdClient(endpoints, learnerPaths),
    dataDir: proxyDataDir,
    log,
    info: {
      // Real TiFlash registers its flash service (engine-addr, 3930) as the store address and the
      // proxy (20170) as peer_address; TiUP and tiseal find TiFlash stores by host:3930.
      address: getString(learner, 'server.engine-addr') ?? advertiseOf(getString(raw, 'flash.service_addr') ?? '0.0.0.0:3930', proxyAdv),
      peer_address: proxyAdv,
      status_address: statusAdv,
      version: version.text,
      git_hash: EMULATOR_GIT_HASH,
      labels,
      start_timestamp: Math.floor(Date.now() / 1000),
      deploy_path: self ? path.dirname(path.resolve(self)) : path.resolve('bin/tiflash'),
    },
  });
  const servers: net.Server[] = [];
  onShutdown(log, () => {
    hb.stop();
    for (const s of servers) s.close();
  });
  await hb.register();

  const listenHost = getString(raw, 'listen_host') ?? '0.0.0.0';
  const simpleHttp = (tlsOn: ServerTls | undefined, body: (p: string) => [number, string]): net.Server => {
    const h: http.RequestListener = (req, res) => {
      const [code, text] = body((req.url ?? '/').split('?')[0]);
      res.writeHead(code);
      res.end(text);
    };
    if (!tlsOn) return http.createServer(h);
    const s = tlsOn.attach(https.createServer(tlsOn.serverOptions(), h));
    closeUnlessAllowedCN(s, sec.allowedCN, log);
    return s;
  };
  try {
    const tcpPort = getNumber(raw, 'tcp_port');
    if (tcpPort) {
      // TiFlash's TCP port never speaks TLS (tcp_port_secure is refused with TLS config); it only complains.
      if (sec.paths) log.error('tls config is set but tcp_port_secure is not set.');
      const s = createRpcServer({ component: 'tiflash', version: version.text, allowedCN: [], log });
      await listen(s, `${listenHost}:${tcpPort}`);
      servers.push(s);
    } else if (sec.paths) log.info('tcp_port is closed because tls config is set');
    const pingBody = (p: string): [number, string] => (p === '/' || p === '/ping' ? [200, 'Ok.\n'] : [404, 'Not found\n']);
    // v7.1.0 removed TiFlash's HTTP service: neither http_port nor https_port opens.
    if (!v71) {
      const httpsPort = getNumber(raw, 'https_port');
      if (httpsPort !== undefined) {
        if (!mainHttpTls) fail(log, 'https_port is set but tls config is not set');
        const s = simpleHttp(mainHttpTls, pingBody);
        await listen(s, `${listenHost}:${httpsPort}`);
        servers.push(s);
      } else {
        const s = simpleHttp(undefined, pingBody);
        await listen(s, `${listenHost}:${getNumber(raw, 'http_port') ?? 8123}`);
        servers.push(s);
      }
    }
    const service = getString(raw, 'flash.service_addr') ?? '0.0.0.0:3930';
    const svc = createRpcServer({ component: 'tiflash', version: version.text, tls: mainTls, allowedCN: sec.allowedCN, storeId: () => hb.storeId, log });
    await listen(svc, service);
    servers.push(svc);
    const proxy = createRpcServer({ component: 'tiflash-proxy', version: version.text, tls: proxyTls, allowedCN: learnerSec.allowedCN, storeId: () => hb.storeId, log });
    await listen(proxy, proxyAddr);
    servers.push(proxy);
    servers.push(
      await startStatusServer({
        addr: statusAddr,
        tls: proxyStatusTls,
        allowedCN: learnerSec.allowedCN,
        // tikv src/server/status_server/mod.rs should_check_cert: only these GETs skip the CN check (POST /config does not).
        cnExempt: TIKV_STATUS_CN_EXEMPT,
        log,
        handler: (req, res) => {
          const p = (req.url ?? '/').split('?')[0];
          if (p === '/status') {
            res.writeHead(200);
            res.end();
          } else if (p === '/metrics') {
            res.writeHead(200);
            res.end(metricsText('tiflash_proxy', version.text));
          } else {
            res.writeHead(404);
            res.end('not found');
          }
        },
      }),
    );
    const metricsPort = getNumber(raw, 'status.metrics_port');
    if (metricsPort) {
      const s = simpleHttp(mainHttpTls, (p) => (p === '/metrics' ? [200, metricsText('tiflash', version.text)] : [404, 'Not found\n']));
      await listen(s, `${listenHost}:${metricsPort}`);
      servers.push(s);
    }
  } catch (e) {
    fail(log, `Net Exception: ${(e as Error).message}`);
  }
  hb.start();
  if (getString(raw, 'tmp_path')) fs.mkdirSync(getString(raw, 'tmp_path')!, { recursive: true });
  log.info('TiFlash is ready', { 'store-id': hb.storeId ?? '', proxy: proxyAddr });
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'version' || cmd === '--version' || cmd === '-V') return printVersion(emulatedVersion().text);
  if (cmd === 'server') return server(rest);
  process.stderr.write(`Unknown command: ${cmd ?? ''} (tiseal emulator implements "server" and "version")\n`);
  process.exit(1);
}

main().catch((e) => {
  process.stderr.write(`[FATAL] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
