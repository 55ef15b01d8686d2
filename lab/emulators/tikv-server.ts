/**
 * tiseal lab EMULATOR of tikv-server (test equipment, not the real TiKV). See README.md.
 */
import * as path from 'path';
import type * as net from 'net';
import { FlagError, flagBool, parseFlags } from './common/flags';
import { Logger } from './common/log';
import { PdClient } from './common/pd-client';
import { onShutdown } from './common/process';
import { createRpcServer } from './common/rpc-server';
import { metricsText, startStatusServer, TIKV_STATUS_CN_EXEMPT } from './common/status-http';
import { StoreHeartbeat } from './common/store-heartbeat';
import { ConfigError } from './common/toml';
import { listen, ServerTls } from './common/tls';
import { bareVersion, EMULATOR_BUILD_TS, EMULATOR_GIT_BRANCH, EMULATOR_GIT_HASH, emulatedVersion } from './common/version';
import { loadTikvConfig, TIKV_FLAGS, TikvConfig, validateSecurity } from './tikv/config';
import { DataKey, EncryptionError, openEncryption } from './tikv/encryption';
import { RaftStore } from './tikv/raft';
import { raftTiming, RaftTiming, validateRaftTiming } from './tikv/raft-config';
import { RaftStorage, RegionMeta } from './tikv/raft-storage';
import { rpcHandler } from './tikv/rpc-handler';
import type { Json } from './common/json';

function printVersion(v: string): void {
  process.stdout.write(
    `TiKV \nRelease Version:   ${v}\nEdition:           Community\nGit Commit Hash:   ${EMULATOR_GIT_HASH}\n` +
      `Git Commit Branch: ${EMULATOR_GIT_BRANCH}\nUTC Build Time:    ${EMULATOR_BUILD_TS}\n` +
      `Rust Version:      rustc (tiseal emulator)\nEnable Features:   \nProfile:           dist_release\n`,
  );
}

async function main(): Promise<void> {
  const version = emulatedVersion();
  let flags;
  try {
    flags = parseFlags(process.argv.slice(2), TIKV_FLAGS, 'clap', 'tikv-server');
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(e.exitCode);
    }
    throw e;
  }
  if (flagBool(flags, 'version')) return printVersion(bareVersion(version));
  const boot = new Logger('tikv');
  let cfg: TikvConfig;
  try {
    cfg = loadTikvConfig(flags, version);
  } catch (e) {
    if (e instanceof ConfigError) boot.fatal(e.message);
    throw e;
  }
  const log = new Logger('tikv', cfg.logFile);
  log.info('Welcome to TiKV [tiseal emulator]', { 'Release Version': bareVersion(version) });
  if (cfg.unrecognized.length) log.warn('unrecognized configuration options', { keys: cfg.unrecognized.join(', ') });
  let timing: RaftTiming = raftTiming({});
  try {
    validateSecurity(cfg.security);
    if (cfg.pdEndpoints.length === 0) throw new ConfigError('please specify pd.endpoints.');
    timing = raftTiming(cfg.raw);
    validateRaftTiming(timing);
  } catch (e) {
    log.fatal(`invalid configuration: ${(e as Error).message}`);
  }
  if (flagBool(flags, 'config-check')) {
    process.stdout.write('config check successful\n');
    return;
  }
  let dataKey: DataKey | undefined;
  try {
    const enc = openEncryption(cfg.encryption, cfg.dataDir);
    dataKey = enc.dataKey;
    log.info(enc.message);
  } catch (e) {
    if (e instanceof EncryptionError) log.fatal(`Encryption failed to initialize: ${e.message}. code: ${e.code}`);
    throw e;
  }

  const tlsOn = !!cfg.security.ca;
  const paths = tlsOn ? { ca: cfg.security.ca, cert: cfg.security.cert, key: cfg.security.key } : undefined;
  let serverTls: ServerTls | undefined;
  let statusTls: ServerTls | undefined;
  if (paths) {
    try {
      // gRPC: security::Fetcher, asked for every new connection, reloads when the cert's mtime changed.
      serverTls = new ServerTls({ paths, requireClientCert: true, reload: 'cert-mtime', reloadCA: true }, log);
      // The status server reloads only after a failed handshake (tls_incoming → handle_ssl_error).
      statusTls = new ServerTls(
        { paths, requireClientCert: cfg.security.allowedCN.length > 0, reload: 'after-failed-handshake', reloadCA: true, mozillaModern: true },
        log,
      );
    } catch (e) {
      log.fatal(`failed to create server: ${(e as Error).message}`);
    }
  }

  let raft: RaftStore | undefined;
  const deployPath = process.env.TISEAL_EMULATOR_SELF ? path.dirname(path.resolve(process.env.TISEAL_EMULATOR_SELF)) : path.resolve('bin');
  const pd = new PdClient(cfg.pdEndpoints, paths);
  const hb = new StoreHeartbeat({
    pd,
    dataDir: cfg.dataDir,
    log,
    info: {
      address: cfg.advertiseAddr,
      peer_address: cfg.advertiseAddr,
      status_address: cfg.advertiseStatusAddr,
      version: bareVersion(version),
      git_hash: EMULATOR_GIT_HASH,
      labels: cfg.labels,
      start_timestamp: Math.floor(Date.now() / 1000),
      deploy_path: deployPath,
    },
    stats: () => (raft ? { region_leaders: raft.leaders(), ...raft.counts() } : {}),
    onAnswer: (a) => {
      if (!raft) return;
      raft.applyRegions(((a.regions as unknown as RegionMeta[] | undefined) ?? []));
      for (const op of (a.operators as Record<string, Json>[] | undefined) ?? []) {
        void raft.transferLeader(Number(op.region_id), Number(op.term), Number(op.to_store));
      }
    },
  });
  const servers: net.Server[] = [];
  onShutdown(log, () => {
    hb.stop();
    raft?.stop();
    for (const s of servers) s.close();
  });
  // Like TiKV: no port is open until PD answered (the store id and cluster id come from PD).
  await hb.register();

  try {
    raft = new RaftStore({
      storeId: () => Number(hb.storeId ?? 0), storage: new RaftStorage(cfg.dataDir, dataKey), timing, log, tls: paths, onLeaderChange: () => hb.kick(),
    });
  } catch (e) {
    log.fatal(`failed to open engine: ${(e as Error).message}`);
  }
  const rpc = createRpcServer({
    component: 'tikv', version: bareVersion(version), tls: serverTls, allowedCN: cfg.security.allowedCN, storeId: () => hb.storeId,
    request: rpcHandler(raft!, () => hb.storeId, log), log,
  });
  try {
    await listen(rpc, cfg.addr);
    servers.push(rpc);
    servers.push(
      await startStatusServer({
        addr: cfg.statusAddr,
        tls: statusTls,
        allowedCN: cfg.security.allowedCN,
        // tikv src/server/status_server/mod.rs should_check_cert: only these GETs skip the CN check (POST /config does not).
        cnExempt: TIKV_STATUS_CN_EXEMPT,
        log,
        handler: (req, res) => {
          const p = (req.url ?? '/').split('?')[0];
          if (p === '/status') {
            res.writeHead(200);
            res.end();
          } else if (p === '/metrics') {
            res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
            res.end(metricsText('tikv', bareVersion(version)));
          } else if (p === '/config') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({
              server: { addr: cfg.addr, 'advertise-addr': cfg.advertiseAddr, 'status-addr': cfg.statusAddr },
              storage: { 'data-dir': cfg.dataDir },
              pd: { endpoints: cfg.pdEndpoints },
              security: {
                'ca-path': cfg.security.ca, 'cert-path': cfg.security.cert, 'key-path': cfg.security.key,
                'cert-allowed-cn': cfg.security.allowedCN,
                encryption: { 'data-encryption-method': cfg.encryption.method, 'master-key': cfg.encryption.masterKey },
              },
            }));
          } else if (p === '/debug/store') {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ store_id: hb.storeId }));
          } else {
            res.writeHead(404);
            res.end('not found');
          }
        },
      }),
    );
  } catch (e) {
    log.fatal(`failed to start server: ${(e as Error).message}`);
  }
  hb.start();
  raft!.start();
  log.info('TiKV is ready to serve', { addr: cfg.addr, 'status-addr': cfg.statusAddr, 'store-id': hb.storeId ?? '' });
}

main().catch((e) => {
  process.stderr.write(`[FATAL] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
