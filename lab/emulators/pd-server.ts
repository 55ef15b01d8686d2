/**
 * tiseal lab EMULATOR of pd-server (test equipment, not the real PD). See README.md.
 * Real etcd (membership, raft, peer TLS) + PD's HTTP API on the client port.
 */
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { FlagError, flagBool, parseFlags } from './common/flags';
import { Logger } from './common/log';
import { onShutdown } from './common/process';
import { ConfigError } from './common/toml';
import { pdClientTlsOptions, ServerTls, TlsFileError } from './common/tls';
import { EMULATOR_BUILD_TS, EMULATOR_GIT_BRANCH, EMULATOR_GIT_HASH, emulatedVersion, versionAtLeast } from './common/version';
import { createApiHandler, PdContext } from './pd/api';
import { initClusterId, saveMemberInfo } from './pd/cluster';
import { loadPdConfig, PD_FLAGS, PdConfig, tlsEnabled } from './pd/config';
import { EtcdProcess } from './pd/etcd';
import { startFront } from './pd/front';
import { isDataExist, prepareJoin } from './pd/join';

function printVersion(v: string): void {
  process.stdout.write(
    `Release Version: ${v}\nEdition: Community\nGit Commit Hash: ${EMULATOR_GIT_HASH}\n` +
      `Git Branch: ${EMULATOR_GIT_BRANCH}\nUTC Build Time:  ${EMULATOR_BUILD_TS}\n`,
  );
}

function deployPath(): string {
  const self = process.env.TISEAL_EMULATOR_SELF;
  return self ? path.dirname(path.resolve(self)) : path.resolve('bin');
}

async function main(): Promise<void> {
  const version = emulatedVersion();
  let flags;
  try {
    flags = parseFlags(process.argv.slice(2), PD_FLAGS, 'pflag', 'pd-server');
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`${e.message}\nUsage:\n  pd-server [flags]\n`);
      process.exit(e.exitCode);
    }
    throw e;
  }
  if (flagBool(flags, 'version')) {
    printVersion(version.text);
    return;
  }
  const boot = new Logger('pd');
  const configCheck = flagBool(flags, 'config-check');
  let cfg: PdConfig;
  try {
    cfg = loadPdConfig(flags, version);
  } catch (e) {
    // From v7.1 pd-server is a cobra command: a config error is printed to stdout and start()
    // returns, so the process exits 0 even under --config-check (v6.5: log.Fatal, exit 1).
    if (e instanceof ConfigError && configCheck && versionAtLeast(version, 'v7.1.0')) {
      process.stdout.write(`${e.message}\n`);
      return;
    }
    if (e instanceof ConfigError) boot.fatal(`parse cmd flags error`, { error: e.message });
    throw e;
  }
  if (configCheck) {
    // configutil.PrintConfigCheckMsg: the warnings, or "config check successful", on stdout; before the logger.
    process.stdout.write(cfg.warnings.length ? cfg.warnings.map((w) => `${w}\n`).join('') : 'config check successful\n');
    return;
  }
  const log = new Logger('pd', cfg.logFile);
  for (const w of cfg.warnings) log.warn(w);
  log.info('Welcome to Placement Driver (PD) [tiseal emulator]', { 'release-version': version.text, name: cfg.name });

  // etcd's listener rules, applied to the client port the emulator serves.
  const withTls = tlsEnabled(cfg);
  for (const u of cfg.clientUrls) {
    if (u.startsWith('https://') && !withTls) {
      log.fatal('run server failed', { error: `TLS key/cert (--cert-file, --key-file) must be provided for client url ${u} with HTTPS scheme` });
    }
    if (u.startsWith('http://') && withTls) {
      log.warn(`The scheme of client url ${u} is HTTP while peer key/cert files are presented. Ignored key/cert files.`);
    }
  }
  let serverTls: ServerTls | undefined;
  if (withTls) {
    try {
      serverTls = new ServerTls(
        {
          paths: { ca: cfg.security.ca, cert: cfg.security.cert!, key: cfg.security.key! },
          requireClientCert: !!cfg.security.ca,
          reload: 'every-handshake',
          reloadCA: false,
          alpn: 'http1-else-h2',
          goRuntime: true,
        },
        log,
      );
    } catch (e) {
      if (e instanceof TlsFileError) log.fatal('run server failed', { error: e.message });
      log.fatal('run server failed', { error: `tls: ${(e as Error).message}` });
    }
  }
  const v84 = versionAtLeast(version, 'v8.4.0');
  const allowed = cfg.security.allowedCN;
  if (v84 && allowed.length > 1) {
    log.warn('etcd 3.4 under the emulator checks only one CN on the peer port; several CNs are enforced on the client port only');
  }

  let join;
  try {
    join = await prepareJoin(cfg, log, version);
  } catch (e) {
    log.fatal('join meet error', { error: (e as Error).message });
  }
  // tikv/pd v6.5.0–v8.3 (v8.1.0 server/config/config.go GenEmbedEtcdConfig → grpcutil
  // GetOneAllowedCN): several CNs fail CreateServer, i.e. after --config-check said "config check
  // successful" and after the join; cmd/pd-server/main.go: log.Fatal("create server failed", …).
  if (!v84 && allowed.length > 1) {
    log.fatal('create server failed', { error: '[PD:grpcutil:ErrSecurityConfig]security config error: only supports one CN' });
  }
  const etcd = new EtcdProcess();
  let stopping = false;
  const hasData = isDataExist(path.join(cfg.dataDir, 'member'));
  let initialCluster = join ? join.initialCluster : cfg.initialCluster;
  if (!initialCluster) initialCluster = cfg.advertisePeerUrls.map((u) => `${cfg.name}=${u}`).join(',');
  try {
    await etcd.start({
      cfg,
      initialCluster,
      initialClusterState: join ? join.state : hasData ? 'existing' : (cfg.initialClusterState as 'new' | 'existing'),
      log,
      peerAllowedCN: allowed.length === 1 ? allowed[0] : undefined,
      // PD hands --force-new-cluster to its embedded etcd (config.go GenEmbedEtcdConfig).
      forceNewCluster: flagBool(flags, 'force-new-cluster'),
    });
  } catch (e) {
    log.fatal('run server failed', { error: (e as Error).message });
  }
  void etcd.exitPromise.then((code) => {
    if (!stopping) log.fatal('embedded etcd stopped, PD exits', { code: String(code) });
  });

  const startTimestamp = Math.floor(Date.now() / 1000);
  const clientTls = withTls ? () => pdClientTlsOptions({ ca: cfg.security.ca, cert: cfg.security.cert, key: cfg.security.key }, allowed) : undefined;
  const ready = (async () => {
    for (;;) {
      try {
        const cid = await initClusterId(etcd.gateway);
        const { memberId } = await etcd.gateway.status();
        await saveMemberInfo(etcd.gateway, cid, memberId, {
          deploy_path: deployPath(),
          binary_version: version.text,
          git_hash: EMULATOR_GIT_HASH,
        });
        log.info('init cluster id', { 'cluster-id': cid.toString(), 'member-id': memberId.toString() });
        return { cid, memberId };
      } catch (e) {
        await new Promise((r) => setTimeout(r, 300));
        if (!etcd.running) throw e;
      }
    }
  })();
  ready.catch(() => undefined);
  const gatewayDialFails = v84 && allowed.length > 1 && cfg.clientUrls.some((u) => u.startsWith('https://'));
  if (gatewayDialFails) log.warn('grpc: addrConn.createTransport failed to connect (grpc-gateway dials with InsecureSkipVerify; AllowedCNs cannot be checked): every /v3/* HTTP call fails');
  const ctx: PdContext = { cfg, version, log, etcd, ready, startTimestamp, clientTls, gatewayDialFails };

  const api = http.createServer(createApiHandler(ctx));
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', () => r()));
  const apiPort = (api.address() as net.AddressInfo).port;
  const etcdPort = Number(new URL(etcd.clientUrl).port);
  const fronts: net.Server[] = [];
  for (const u of cfg.clientUrls) {
    try {
      fronts.push(
        await startFront({
          listenUrl: u,
          tls: u.startsWith('https://') ? serverTls : undefined,
          // v8.4+: the list reaches etcd's client TLS only with more than one CN (tikv/pd v8.5.1
          // server/config/config.go GenEmbedEtcdConfig: "Only check client cert when there are multiple CNs").
          allowedCN: v84 && allowed.length > 1 ? allowed : undefined,
          apiPort,
          etcdPort,
          log,
        }),
      );
    } catch (e) {
      await etcd.stop();
      log.fatal('run server failed', { error: `listen tcp ${new URL(u).host}: ${(e as Error).message}` });
    }
  }
  log.info('PD client port is serving', { 'client-urls': cfg.clientUrls.join(','), 'etcd-client': etcd.clientUrl });

  onShutdown(log, async () => {
    stopping = true;
    for (const f of fronts) f.close();
    api.close();
    await etcd.stop();
  });
}

main().catch((e) => {
  process.stderr.write(`[FATAL] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
