/**
 * tiseal lab EMULATOR of tidb-server (test equipment, not the real TiDB). See README.md.
 * Like TiDB, it opens no port until it reached PD and the TiKV stores PD lists, over the cluster
 * TLS of `[security] cluster-ssl-*`; when that does not succeed within the boot timeout it exits 1
 * with the last reason (TiDB's bootstrap fails the same way and systemd restarts it).
 */
import * as fs from 'fs';
import * as path from 'path';
import type * as net from 'net';
import * as tls from 'tls';
import * as netMod from 'net';
import { FlagError, flagBool, flagString, FlagSpec, parseFlags } from './common/flags';
import { asUint64, Json } from './common/json';
import { Logger } from './common/log';
import { createMysqlServer } from './common/mysql-server';
import { loadMysqlTls, MysqlTlsConfig, MysqlTlsPaths } from './common/mysql-tls';
import { ClusterKvRoute } from './tidb/kv-route';
import { PdClient } from './common/pd-client';
import { bootTimeoutMs, onShutdown } from './common/process';
import { metricsText, startStatusServer } from './common/status-http';
import { ConfigError, getBool, getString, getStringArray, loadTomlFile, Schema, Table, unknownKeys } from './common/toml';
import { clientTlsOptions, listen, ServerTls, splitHostPort, TlsPaths } from './common/tls';
import { sleep } from './common/http';
import { EMULATOR_BUILD_TS, EMULATOR_GIT_BRANCH, EMULATOR_GIT_HASH, emulatedVersion, versionAtLeast } from './common/version';
import { ClusterSysvars } from './tidb/sysvars';

const TIDB_FLAGS: FlagSpec[] = [
  { name: 'P' }, { name: 'status' }, { name: 'host' }, { name: 'advertise-address' }, { name: 'store' }, { name: 'path' },
  { name: 'config' }, { name: 'log-file' }, { name: 'log-slow-query' }, { name: 'L' }, { name: 'socket' },
  { name: 'status-host' }, { name: 'metrics-addr' }, { name: 'temp-dir' }, { name: 'plugin-dir' }, { name: 'plugin-load' },
  { name: 'lease' }, { name: 'affinity-cpus' }, { name: 'proxy-protocol-networks' }, { name: 'initialize-sql-file' },
  { name: 'V', bool: true }, { name: 'config-check', bool: true }, { name: 'config-strict', bool: true },
  { name: 'report-status', bool: true }, { name: 'initialize-insecure', bool: true }, { name: 'initialize-secure', bool: true },
  { name: 'repair-mode', bool: true }, { name: 'enable-binlog', bool: true },
];

const TIDB_SCHEMA: Schema = {
  host: true, 'advertise-address': true, port: true, cors: true, store: true, path: true, socket: true, lease: true,
  'split-table': true, 'token-limit': true, 'temp-dir': true, 'oom-use-tmp-storage': true, 'tmp-storage-path': true,
  'tmp-storage-quota': true, 'server-version': true, 'version-comment': true, 'tidb-edition': true,
  'tidb-release-version': true, log: 'any', instance: 'any', status: 'any', performance: 'any',
  'prepared-plan-cache': 'any', opentracing: 'any', 'proxy-protocol': 'any', 'pd-client': 'any', 'tikv-client': 'any',
  binlog: 'any', 'compatible-kill-query': true, plugin: 'any', 'pessimistic-txn': 'any', 'max-index-length': true,
  'index-limit': true, 'table-column-count-limit': true, 'graceful-wait-before-shutdown': true, experimental: 'any',
  'skip-register-to-dashboard': true, 'enable-telemetry': true, labels: 'any', 'enable-global-index': true,
  'deprecate-integer-display-length': true, 'enable-enum-length-limit': true, 'stores-refresh-interval': true,
  'enable-tcp4-only': true, 'enable-forwarding': true, 'max-ballast-object-size': true, 'ballast-object-size': true,
  'transaction-summary': 'any', 'enable-global-kill': true, 'initialize-sql-file': true, 'enable-batch-dml': true,
  'mem-quota-query': true, 'oom-action': true, 'delay-clean-table-lock': true, 'split-region-max-num': true,
  'enable-32bits-connection-id': true, 'isolation-read': 'any', 'new_collations_enabled_on_first_bootstrap': true,
  'check-mb4-value-in-utf8': true, 'treat-old-version-utf8-as-utf8mb4': true, 'repair-mode': true,
  'repair-table-list': true, 'max-server-connections': true, 'enable-table-lock': true, 'in-mem-slow-query-topn-num': true,
  'in-mem-slow-query-recent-num': true, 'tidb-max-reuse-chunk': true, 'tidb-max-reuse-column': true,
  'tidb-enable-exit-check': true, 'disaggregated-tiflash': true, 'autoscaler-type': true, 'autoscaler-addr': true,
  'is-tiflashcompute-fixed-pool': true, 'autoscaler-cluster-id': true, 'use-autoscaler': true, 'tiflash-replicas': 'any',
  'keyspace-name': true, 'enable-forwarding-sql': true, 'standby': 'any', 'server-memory-quota': true,
  security: {
    'skip-grant-table': true, 'ssl-ca': true, 'ssl-cert': true, 'ssl-key': true, 'cluster-ssl-ca': true,
    'cluster-ssl-cert': true, 'cluster-ssl-key': true, 'cluster-verify-cn': true, 'spilled-file-encryption-method': true,
    'enable-sem': true, 'auto-tls': true, 'tls-version': true, 'rsa-key-size': true, 'secure-bootstrap': true,
    'auth-token-jwks': true, 'auth-token-refresh-interval': true, 'disconnect-on-expired-password': true,
    'session-token-signing-cert': true, 'session-token-signing-key': true, 'require-secure-transport': true,
    'sem-config': true, 'cluster-ssl-ciphers': true,
  },
};

/**
 * From v6.1 `require-secure-transport` is no longer a field of config.Security but is on
 * pkg/config/config.go `removedConfig` ("security.require-secure-transport": {}): the key is
 * undecoded, so it is reported with the other invalid options and has no effect; InitializeConfig
 * tolerates it even under --config-strict/--config-check (isAllRemovedConfigItems). Only the keys
 * the schema above does not accept are listed here.
 */
const REMOVED_CONFIG = ['security.require-secure-transport'];
const SYSVAR_REQUIRE_FROM = 'v6.1.0';

function tidbSchema(sysvarRequire: boolean): Schema {
  if (!sysvarRequire) return TIDB_SCHEMA;
  const security = { ...(TIDB_SCHEMA.security as Schema) };
  delete security['require-secure-transport'];
  return { ...TIDB_SCHEMA, security };
}

function printVersion(v: string): void {
  process.stdout.write(
    `Release Version: ${v}\nEdition: Community\nGit Commit Hash: ${EMULATOR_GIT_HASH}\nGit Branch: ${EMULATOR_GIT_BRANCH}\n` +
      `UTC Build Time: ${EMULATOR_BUILD_TS}\nGoVersion: go1.23 (tiseal emulator)\nRace Enabled: false\n` +
      `Check Table Before Drop: false\nStore: unistore\n`,
  );
}

/** TLS handshake to a TiKV store with the cluster cert, then one ping on the channel. */
function probeStore(addr: string, paths: TlsPaths | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const { host, port } = splitHostPort(addr);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve();
    };
    const sock: net.Socket = paths
      ? tls.connect({ host, port, ...clientTlsOptions(paths), ALPNProtocols: ['h2'], servername: netMod.isIP(host) ? undefined : host })
      : netMod.connect({ host, port });
    const timer = setTimeout(() => done(new Error(`connect to TiKV store ${addr}: timed out`)), 3000);
    sock.once(paths ? 'secureConnect' : 'connect', () => sock.write('ping\n'));
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      if (!buf.includes('\n')) return;
      if (buf.startsWith('pong ')) done();
      else done(new Error(`TiKV store ${addr}: ${buf.trim()}`));
    });
    sock.on('error', (e) => done(new Error(`connect to TiKV store ${addr}: ${e.message}`)));
    sock.on('end', () => done(new Error(`TiKV store ${addr} closed the connection`)));
  });
}

async function main(): Promise<void> {
  const version = emulatedVersion();
  let flags;
  try {
    flags = parseFlags(process.argv.slice(2), TIDB_FLAGS, 'goflag', process.argv[1] ?? 'tidb-server');
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(e.exitCode);
    }
    throw e;
  }
  if (flagBool(flags, 'V')) return printVersion(version.text);
  const sysvarRequire = versionAtLeast(version, SYSVAR_REQUIRE_FROM);
  const boot = new Logger('tidb');
  const configFile = flagString(flags, 'config');
  let raw: Table = {};
  let clusterCA: string | undefined;
  let clusterCert: string | undefined;
  let clusterKey: string | undefined;
  let verifyCN: string[] = [];
  let logFile: string | undefined;
  let sqlPaths: MysqlTlsPaths = { ca: '', cert: '', key: '' };
  let tlsVersion = '';
  let requireSecure = false;
  try {
    if (configFile) raw = loadTomlFile(configFile);
    const bad = unknownKeys(raw, tidbSchema(sysvarRequire));
    if (bad.length) {
      const msg =
        `config file ${configFile} contained invalid configuration options: ${bad.join(', ')}; check TiDB manual to make ` +
        'sure this option has not been deprecated and removed from your TiDB version if the option does not appear to be a typo';
      const allRemoved = bad.every((k) => REMOVED_CONFIG.includes(k));
      if ((flagBool(flags, 'config-strict') || flagBool(flags, 'config-check')) && !allRemoved) throw new ConfigError(msg);
      process.stderr.write(msg + '\n');
    }
    clusterCA = getString(raw, 'security.cluster-ssl-ca') || undefined;
    clusterCert = getString(raw, 'security.cluster-ssl-cert') || undefined;
    clusterKey = getString(raw, 'security.cluster-ssl-key') || undefined;
    verifyCN = getStringArray(raw, 'security.cluster-verify-cn') ?? [];
    logFile = flagString(flags, 'log-file') ?? getString(raw, 'log.file.filename');
    sqlPaths = {
      ca: getString(raw, 'security.ssl-ca') ?? '', cert: getString(raw, 'security.ssl-cert') ?? '', key: getString(raw, 'security.ssl-key') ?? '',
    };
    tlsVersion = getString(raw, 'security.tls-version') ?? '';
    // Before v6.1 the config key is the only switch (and SET GLOBAL lasts until the restart).
    if (!sysvarRequire) requireSecure = getBool(raw, 'security.require-secure-transport') ?? false;
  } catch (e) {
    boot.fatal('invalid config', { error: (e as Error).message });
  }
  if (flagBool(flags, 'config-check')) {
    // config.go RemovedVariableCheck, logged as a warning under --config-check.
    const removed = REMOVED_CONFIG.filter((k) => getBool(raw, k) !== undefined).sort();
    if (removed.length && sysvarRequire) boot.warn(`The following configuration options are no longer supported in this version of TiDB. Check the release notes for more information: ${removed.join(', ')}`);
    process.stdout.write('config check successful\n');
    return;
  }
  const log = new Logger('tidb', logFile);
  if (flags.values.has('log-slow-query')) {
    const slow = flagString(flags, 'log-slow-query')!;
    fs.mkdirSync(path.dirname(path.resolve(slow)), { recursive: true });
    fs.closeSync(fs.openSync(slow, 'a'));
  }
  log.info('Welcome to TiDB. [tiseal emulator]', { 'Release Version': version.text });
  const host = flagString(flags, 'host') ?? getString(raw, 'host') ?? '0.0.0.0';
  const port = flagString(flags, 'P') ?? String(raw.port ?? 4000);
  const statusPort = flagString(flags, 'status') ?? '10080';
  const store = flagString(flags, 'store') ?? getString(raw, 'store') ?? 'unistore';
  const pdPath = flagString(flags, 'path') ?? getString(raw, 'path') ?? '/tmp/tidb';
  if (store !== 'tikv') log.fatal('tiseal emulator only supports --store=tikv', { store });

  // Cluster TLS exists only with a CA (Security.ToTLSConfig); cert+key are the client identity.
  let paths: TlsPaths | undefined;
  let statusTls: ServerTls | undefined;
  if (clusterCA) {
    try {
      clientTlsOptions({ ca: clusterCA, cert: clusterCert, key: clusterKey });
      if (!clusterCert || !clusterKey) throw new Error('cluster-ssl-cert and cluster-ssl-key are required to serve the status port over TLS');
      paths = { ca: clusterCA, cert: clusterCert, key: clusterKey };
      statusTls = new ServerTls({ paths, requireClientCert: verifyCN.length > 0, reload: 'every-handshake', reloadCA: false }, log);
    } catch (e) {
      log.fatal('failed to create TLS config', { error: (e as Error).message });
    }
  }
  const pd = new PdClient(pdPath.split(',').map((s) => s.trim()).filter(Boolean), paths);
  const sysvars = sysvarRequire ? new ClusterSysvars(pd, paths, log) : undefined;
  const deadline = Date.now() + bootTimeoutMs();
  let reason = '';
  let attempt = 0;
  for (;;) {
    try {
      const members = (await pd.json('/pd/api/v1/members')) as Record<string, Json>;
      const cid = asUint64((members.header as Record<string, Json>)?.cluster_id);
      const stores = (((await pd.json('/pd/api/v1/stores')) as Record<string, Json>).stores as Record<string, Json>[]) ?? [];
      const tikvs = stores
        .map((s) => s.store as Record<string, Json>)
        .filter((s) => s.state_name === 'Up' && !((s.labels as Record<string, Json>[] | undefined) ?? []).some((l) => l.key === 'engine' && l.value === 'tiflash'));
      if (tikvs.length === 0) throw new Error('[tikv:9005]Region is unavailable: no TiKV store is Up in PD');
      await Promise.all(tikvs.map((s) => probeStore(String(s.address), paths)));
      // session.BootstrapSession → LoadSysVarCacheLoop → rebuildSysVarCache, before NewServer loads TLS.
      await sysvars?.rebuild();
      log.info('connected to PD and TiKV', { 'cluster-id': cid.toString(), stores: tikvs.length });
      break;
    } catch (e) {
      reason = (e as Error).message;
      if (attempt++ % 5 === 0) log.warn('bootstrap: cannot reach the cluster, retrying', { error: reason });
      if (Date.now() > deadline) log.fatal('unexpected error', { error: `[tikv:9001]PD server timeout: ${reason}` });
      await sleep(1000);
    }
  }

  const serverVersion = `8.0.11-TiDB-${version.text}`;
  const requireNow = (): boolean => (sysvars ? sysvars.requireSecureTransport : requireSecure);
  // MySQL client TLS (pkg/server/server.go NewServer): a load error only logs. Before v6.1 the config's
  // require-secure-transport also needs TLS to exist; from v6.1 NewServer has no such check: a TiDB
  // under a persisted ON without TLS starts and refuses every TCP client (conn.go, 3159).
  let sqlTls: MysqlTlsConfig | undefined;
  try {
    sqlTls = loadMysqlTls(sqlPaths, { tlsVersion, requireSecureTransport: requireNow(), log });
  } catch (e) {
    if (requireSecure) log.fatal('failed to create the server', { error: (e as Error).message });
    log.error('secure connection cert/key/ca load fail', { error: (e as Error).message });
  }
  if (sqlTls) log.info('mysql protocol server secure connection is enabled', { 'client verification enabled': sqlPaths.ca !== '' });
  else if (requireSecure) log.fatal('failed to create the server', { error: '[server:3159]Connections using insecure transport are prohibited while --require_secure_transport=ON.' });
  // ssl_ca/ssl_cert/ssl_key sysvars are set only when TLS loaded at start; RELOAD TLS re-reads them.
  const reloadPaths: MysqlTlsPaths = sqlTls ? sqlPaths : { ca: '', cert: '', key: '' };
  const rootPassword = (): string => {
    const f = process.env.TISEAL_EMULATOR_ROOT_PASSWORD_FILE;
    if (!f) return '';
    try {
      return fs.readFileSync(f, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      log.error('cannot read TISEAL_EMULATOR_ROOT_PASSWORD_FILE, refusing logins', { error: (e as Error).message });
      return '\0unreadable';
    }
  };
  const servers: net.Server[] = [];
  let liveConnections = (): number => 0;
  onShutdown(log, () => {
    sysvars?.stop();
    for (const s of servers) s.close();
  });
  try {
    const sql = createMysqlServer({
      serverVersion,
      log,
      rootPassword,
      offerSsl: !!sqlTls,
      ctx: {
        serverVersion,
        tidbVersionText:
          `Release Version: ${version.text}\nEdition: Community\nGit Commit Hash: ${EMULATOR_GIT_HASH}\nGit Branch: ${EMULATOR_GIT_BRANCH}\n` +
          `UTC Build Time: ${EMULATOR_BUILD_TS}\nGoVersion: go1.23 (tiseal emulator)\nRace Enabled: false\nCheck Table Before Drop: false\nStore: tikv`,
        requireSecureTransport: requireNow,
        setRequireSecureTransport: async (on) => {
          if (sysvars) return sysvars.setGlobal(on);
          requireSecure = on;
          log.info('set require_secure_transport', { value: on ? 'ON' : 'OFF' });
        },
        currentTls: () => sqlTls,
        reloadTls: (noRollback) => {
          log.info('execute reload tls', { NoRollbackOnError: noRollback });
          try {
            sqlTls = loadMysqlTls(reloadPaths, { tlsVersion, requireSecureTransport: requireNow(), log });
          } catch (e) {
            log.warn('load x509 failed', { error: (e as Error).message });
            if (!noRollback || requireNow()) throw e;
            log.warn("reload TLS fail but keep working without TLS due to 'no rollback on error'");
            sqlTls = undefined;
          }
        },
        kv: new ClusterKvRoute(pd, paths, log),
      },
    });
    liveConnections = () => sql.sessions.size;
    await listen(sql, `${host}:${port}`);
    servers.push(sql);
    servers.push(
      await startStatusServer({
        addr: `${flagString(flags, 'status-host') ?? '0.0.0.0'}:${statusPort}`,
        tls: statusTls,
        allowedCN: verifyCN,
        cnRejectMessage: 'client certificate CN is not in cluster-verify-cn',
        log,
        handler: (req, res) => {
          const p = (req.url ?? '/').split('?')[0];
          if (p === '/status') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ connections: liveConnections(), version: serverVersion, git_hash: EMULATOR_GIT_HASH }));
          } else if (p === '/metrics') {
            res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
            res.end(metricsText('tidb', version.text));
          } else if (p === '/info') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({
              is_owner: true, version: serverVersion, git_hash: EMULATOR_GIT_HASH, ip: flagString(flags, 'advertise-address') ?? host,
              listening_port: Number(port), status_port: Number(statusPort),
            }));
          } else {
            res.writeHead(404);
            res.end('404 page not found\n');
          }
        },
      }),
    );
  } catch (e) {
    log.fatal('failed to listen', { error: (e as Error).message });
  }
  sysvars?.start();
  log.info('server is running MySQL protocol', { addr: `${host}:${port}`, status: statusPort });
}

main().catch((e) => {
  process.stderr.write(`[FATAL] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
