/**
 * tiseal lab EMULATOR of cdc (TiCDC; test equipment, not the real component). See README.md.
 * `cdc server …` checks the PD URL scheme against its TLS setting exactly as TiCDC does, decodes
 * cdc.toml strictly, reaches PD, then serves /status on its port (TLS 1.2+ when configured).
 */
import * as crypto from 'crypto';
import * as http from 'http';
import * as https from 'https';
import type * as net from 'net';
import type * as tls from 'tls';
import { FlagError, flagString, FlagSpec, parseFlags } from './common/flags';
import { sleep } from './common/http';
import { Logger } from './common/log';
import { PdClient } from './common/pd-client';
import { bootTimeoutMs, onShutdown } from './common/process';
import { metricsText } from './common/status-http';
import { ConfigError, getBool, getString, getStringArray, loadTomlFile, Schema, Table, unknownKeys } from './common/toml';
import { listen, peerCommonName, readTlsFile, ServerTls } from './common/tls';
import { EMULATOR_BUILD_TS, EMULATOR_GIT_BRANCH, EMULATOR_GIT_HASH, emulatedVersion } from './common/version';

const SERVER_FLAGS: FlagSpec[] = [
  { name: 'addr' }, { name: 'advertise-addr' }, { name: 'pd' }, { name: 'data-dir' }, { name: 'config' },
  { name: 'log-file' }, { name: 'log-level' }, { name: 'ca' }, { name: 'cert' }, { name: 'key' },
  { name: 'cert-allowed-cn' }, { name: 'gc-ttl' }, { name: 'tz' }, { name: 'cluster-id' }, { name: 'sort-dir' },
];

const CDC_SCHEMA: Schema = {
  addr: true, 'advertise-addr': true, 'log-file': true, 'log-level': true, log: 'any', 'data-dir': true, 'gc-ttl': true,
  tz: true, 'capture-session-ttl': true, 'owner-flush-interval': true, 'processor-flush-interval': true, sorter: 'any',
  security: {
    'ca-path': true, 'cert-path': true, 'key-path': true, 'cert-allowed-cn': true, mtls: true,
    'client-user-required': true, 'client-allowed-user': true,
  },
  'kv-client': 'any', debug: 'any', 'cluster-id': true, 'max-memory-percentage': true, 'gc-tuner-memory-threshold': true,
  'per-table-memory-quota': true, newarch: true, 'sink': 'any',
};

function fail(msg: string): never {
  process.stderr.write(`Error: ${msg}\n`);
  process.exit(1);
}

function printVersion(v: string): void {
  process.stdout.write(
    `Release Version: ${v}\nGit Commit Hash: ${EMULATOR_GIT_HASH}\nGit Branch: ${EMULATOR_GIT_BRANCH}\n` +
      `UTC Build Time: ${EMULATOR_BUILD_TS}\nGo Version: go1.23 (tiseal emulator)\nFailpoint Build: false\n`,
  );
}

async function server(argv: string[]): Promise<void> {
  const version = emulatedVersion();
  let flags;
  try {
    flags = parseFlags(argv, SERVER_FLAGS, 'pflag', 'cdc server');
  } catch (e) {
    if (e instanceof FlagError) fail(e.message.replace(/^Error: /, ''));
    throw e;
  }
  const configFile = flagString(flags, 'config');
  let raw: Table = {};
  if (configFile) {
    try {
      raw = loadTomlFile(configFile);
    } catch (e) {
      fail((e as Error).message);
    }
    const bad = unknownKeys(raw, CDC_SCHEMA);
    if (bad.length) fail(`component TiCDC server's config file ${configFile} contained unknown configuration options: ${bad.join(', ')}`);
  }
  let ca = '';
  let cert = '';
  let key = '';
  let allowedCN: string[] = [];
  let mtls = false;
  let addr = '127.0.0.1:8300';
  let logFile: string | undefined;
  try {
    ca = flagString(flags, 'ca') ?? getString(raw, 'security.ca-path') ?? '';
    cert = flagString(flags, 'cert') ?? getString(raw, 'security.cert-path') ?? '';
    key = flagString(flags, 'key') ?? getString(raw, 'security.key-path') ?? '';
    const cnFlag = flagString(flags, 'cert-allowed-cn');
    allowedCN = cnFlag !== undefined ? cnFlag.split(',').map((s) => s.trim()).filter(Boolean) : getStringArray(raw, 'security.cert-allowed-cn') ?? [];
    mtls = getBool(raw, 'security.mtls') ?? false;
    addr = flagString(flags, 'addr') ?? getString(raw, 'addr') ?? addr;
    logFile = flagString(flags, 'log-file') ?? getString(raw, 'log-file');
  } catch (e) {
    fail(e instanceof ConfigError ? e.message : String(e));
  }
  const pdAddr = flagString(flags, 'pd') ?? 'http://127.0.0.1:2379';
  // Credential.IsTLSEnabled: all three paths set.
  const tlsOn = !!(ca && cert && key);
  if (!pdAddr) fail('[CDC:ErrInvalidServerOption]empty PD address');
  for (const ep of pdAddr.split(',')) {
    if (tlsOn) {
      if (ep.indexOf('http://') === 0) fail('[CDC:ErrInvalidServerOption]PD endpoint scheme should be https');
    } else if (ep.indexOf('http://') !== 0) {
      fail('[CDC:ErrInvalidServerOption]PD endpoint scheme should be http');
    }
  }
  const log = new Logger('cdc', logFile);
  // cdc/server/server.go New(): with an allow-list, the capture's own CN joins it (AddSelfCommonName)
  // so captures trust each other; the list then guards both directions.
  if (allowedCN.length > 0 && cert) {
    try {
      const self = /(?:^|\n)CN=([^\n]*)/.exec(new crypto.X509Certificate(readTlsFile(cert)).subject)?.[1];
      if (self) allowedCN = [...allowedCN, self];
    } catch (e) {
      fail(`[CDC:ErrToTLSConfigFailed]generate tls config failed: ${(e as Error).message}`);
    }
  }
  log.info('Welcome to Change Data Capture (CDC) [tiseal emulator]', { 'release-version': version.text });
  let serverTls: ServerTls | undefined;
  if (tlsOn) {
    try {
      serverTls = new ServerTls(
        { paths: { ca, cert, key }, requireClientCert: mtls || allowedCN.length > 0, reload: 'every-handshake', reloadCA: false },
        log,
      );
    } catch (e) {
      log.fatal('invalid TLS config', { error: `[CDC:ErrToTLSConfigFailed]generate tls config failed: ${(e as Error).message}` });
    }
  }
  const pd = new PdClient(pdAddr.split(',').map((s) => s.trim()), tlsOn ? { ca, cert, key } : undefined, true);
  const deadline = Date.now() + bootTimeoutMs();
  for (let attempt = 0; ; attempt++) {
    try {
      await pd.json('/pd/api/v1/members');
      break;
    } catch (e) {
      if (attempt % 5 === 0) log.warn('fail to connect to PD, retrying', { error: (e as Error).message });
      if (Date.now() > deadline) {
        log.fatal('run server failed', {
          error: `[CDC:ErrServerNewPDClient]fail to open PD client, pd=[${pdAddr}]: ${(e as Error).message}`,
        });
      }
      await sleep(1000);
    }
  }
  // pkg/upstream/upstream.go init → pkg/version/check.go checkPDVersion: GET /pd/api/v1/version
  // through httputil.NewClient, whose TLS config is ToTLSConfigWithVerify(cert-allowed-cn): the PD
  // SERVER certificate's CN must be in the list (tiflow#3052). Not retryable: the capture exits.
  // (PD's gRPC client and the TiKV gRPC dial use ToTLSConfig without a CN check.)
  if (tlsOn && allowedCN.length > 0) {
    const verifying = new PdClient(pdAddr.split(',').map((s) => s.trim()), { ca, cert, key }, true, allowedCN);
    try {
      await verifying.json('/pd/api/v1/version');
    } catch (e) {
      log.fatal('init upstream error', {
        error: `[CDC:ErrCheckClusterVersionFromPD]failed to request PD Get "${verifying.urlFor(pdAddr.split(',')[0].trim())}/pd/api/v1/version": ${(e as Error).message}, please try again later`,
      });
    }
  }
  const id = crypto.randomUUID();
  const handler: http.RequestListener = (req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    if (p === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version: version.text, git_hash: EMULATOR_GIT_HASH, id, pid: process.pid, is_owner: true, liveness: 0 }, null, 1));
    } else if (p === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metricsText('ticdc', version.text));
    } else if (p === '/api/v2/health') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    } else {
      res.writeHead(404);
      res.end('404 page not found\n');
    }
  };
  let srv: net.Server;
  if (serverTls) {
    const s = https.createServer(serverTls.serverOptions(), handler);
    if (allowedCN.length) {
      s.on('secureConnection', (t: tls.TLSSocket) => {
        const cn = peerCommonName(t);
        if (!cn || !allowedCN.includes(cn)) {
          log.warn('client certificate CN is not allowed', { cn: cn ?? '', allowed: allowedCN.join(',') });
          t.destroy();
        }
      });
    }
    srv = serverTls.attach(s);
  } else {
    srv = http.createServer(handler);
  }
  try {
    await listen(srv, addr);
  } catch (e) {
    log.fatal('run server failed', { error: (e as Error).message });
  }
  log.info('cdc server is serving', { addr, tls: tlsOn });
  onShutdown(log, () => {
    srv.close();
  });
}

async function main(): Promise<void> {
  const [cmd, ...rest] = process.argv.slice(2);
  if (cmd === 'version' || cmd === '--version' || cmd === '-V') return printVersion(emulatedVersion().text);
  if (cmd === 'server') return server(rest);
  if (cmd === undefined) fail('a subcommand is required (tiseal emulator implements "server" and "version")');
  fail(`unknown command "${cmd}" for "cdc"\nRun 'cdc --help' for usage.`);
}

main().catch((e) => {
  process.stderr.write(`[FATAL] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
