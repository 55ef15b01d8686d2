/**
 * What Pump and Drainer (pingcap/tidb-binlog, removed from v8.4.0) share in the emulators: the
 * `[security]` section and its TLS rules (pkg/security/security.go), the PD URL list
 * (pkg/types/urls.go), PD reached with PD's Go client (TLS decided by `ssl-ca`, the scheme
 * ignored: tikv/pd client/grpcutil GetClientConn), node registration in PD's etcd with clientv3
 * (TLS decided by the SCHEME of the first sorted URL: etcd client/v3/internal/endpoint
 * `http` → CREDS_DROP, `https` → CREDS_REQUIRE), and the cmux port serving HTTP.
 */
import * as http from 'http';
import * as https from 'https';
import type * as net from 'net';
import * as tls from 'tls';
import { FlagError, flagBool, flagString, FlagSpec, parseFlags } from '../common/flags';
import { httpRequest, sleep } from '../common/http';
import { asUint64, Json, parseJsonLossless, toJson } from '../common/json';
import { Logger } from '../common/log';
import { PdClient } from '../common/pd-client';
import { clientTlsOptions, listen, readTlsFile, ServerTls, TlsPaths } from '../common/tls';
import { ConfigError, getString, getStringArray, loadTomlFile, Schema, Table, unknownKeys } from '../common/toml';
import { EMULATOR_BUILD_TS, EMULATOR_GIT_HASH, emulatedVersion, versionAtLeast, Version } from '../common/version';

export interface BinlogBoot {
  version: Version;
  raw: Table;
  /** A flag, else the same key in the config file (the flag wins, as in both config.go Parse). */
  opt: (flag: string, key?: string) => string | undefined;
  flags: ReturnType<typeof parseFlags>;
  /** Exit as cmd/<component>/main.go does when the flags or the config do not verify. */
  fatalFlags: (err: string) => never;
}

/**
 * The start both share (pump/config.go and drainer/config.go NewConfig + Parse, cmd/<c>/main.go):
 * refuse a version without the component, Go flags (unknown → exit 2), `-V`, then the config file
 * decoded strictly (util.StrictDecodeFile). Undefined when `-V` printed the version.
 */
export function bootBinlogNode(component: 'pump' | 'drainer', spec: FlagSpec[], schema: Schema, verifyFailed: string): BinlogBoot | undefined {
  const version = emulatedVersion();
  refuseRemovedVersion(component, version);
  const boot = new Logger(component);
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(process.argv.slice(2), spec, 'goflag', component);
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`${e.message}\n`);
      process.exit(e.exitCode);
    }
    throw e;
  }
  if (flagBool(flags, 'V')) {
    process.stdout.write(`Release Version: ${version.text}\nGit Commit Hash: ${EMULATOR_GIT_HASH}\nBuild TS: ${EMULATOR_BUILD_TS}\nGo Version: go1.21 (tiseal emulator)\n`);
    return undefined;
  }
  const fatalFlags = (err: string): never => boot.fatal(verifyFailed, { error: err });
  let raw: Table = {};
  const configFile = flagString(flags, 'config');
  try {
    if (configFile) {
      raw = loadTomlFile(configFile);
      const bad = unknownKeys(raw, schema);
      if (bad.length) throw new ConfigError(`component ${component}'s config file ${configFile} contained unknown configuration options: ${bad.join(', ')}`);
    }
  } catch (e) {
    fatalFlags((e as Error).message);
  }
  const opt = (flag: string, key = flag): string | undefined => flagString(flags, flag) ?? getString(raw, key);
  return { version, raw, opt, flags, fatalFlags };
}

export const SECURITY_SCHEMA: Schema = { 'ssl-ca': true, 'ssl-cert': true, 'ssl-key': true, 'cert-allowed-cn': true };

/** TiDB Binlog was removed in v8.4.0: no pump/drainer binary exists for it (emulator-only message). */
export function refuseRemovedVersion(component: string, v: Version): void {
  if (!versionAtLeast(v, 'v8.4.0')) return;
  process.stderr.write(`tiseal emulator: ${component} is not released for ${v.text} (TiDB Binlog was removed in v8.4.0)\n`);
  process.exit(127);
}

export interface Security {
  ca: string;
  cert: string;
  key: string;
  allowedCN: string[];
}

export function securityOf(raw: Table): Security {
  return {
    ca: getString(raw, 'security.ssl-ca') ?? '',
    cert: getString(raw, 'security.ssl-cert') ?? '',
    key: getString(raw, 'security.ssl-key') ?? '',
    allowedCN: (getStringArray(raw, 'security.cert-allowed-cn') ?? []).map((s) => s.trim()),
  };
}

/** Go's `%+v` of security.Config, as the "tls config … error …" message prints it. */
function goStruct(s: Security): string {
  return `{SSLCA:${s.ca} SSLCert:${s.cert} SSLKey:${s.key} CertAllowedCN:[${s.allowedCN.join(' ')}]}`;
}

/**
 * security.Config.ToTLSConfig: no `ssl-ca` → no TLS at all (cert and key are then ignored); the CA
 * must read and parse; cert+key, when both set, must load. Returns the TLS paths or undefined.
 */
export function toTlsConfig(s: Security): TlsPaths | undefined {
  if (!s.ca) return undefined;
  const wrap = (e: string): ConfigError => new ConfigError(`tls config ${goStruct(s)} error ${e}`);
  let ca: Buffer;
  try {
    ca = readTlsFile(s.ca);
  } catch (e) {
    throw wrap(`could not read ca certificate: ${(e as Error).message}`);
  }
  if (!/-----BEGIN CERTIFICATE-----/.test(ca.toString())) throw wrap('failed to append ca certs');
  if (s.cert && s.key) {
    try {
      tls.createSecureContext({ cert: readTlsFile(s.cert), key: readTlsFile(s.key) });
    } catch (e) {
      const msg = (e as Error).message;
      throw wrap(`could not load client key pair: ${/^open /.test(msg) ? msg : 'tls: private key does not match public key'}`);
    }
  }
  return { ca: s.ca, cert: s.cert, key: s.key };
}

/** pkg/types NewURLs: http/https/unix/unixs, host:port, no path; returned sorted (as Go sorts them). */
export function parsePdUrls(list: string): string[] {
  const out: string[] = [];
  for (const raw of list.split(',')) {
    const s = raw.trim();
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new ConfigError(`URL scheme must be http, https, unix, or unixs: ${s}`);
    }
    if (!['http:', 'https:', 'unix:', 'unixs:'].includes(u.protocol)) throw new ConfigError(`URL scheme must be http, https, unix, or unixs: ${s}`);
    if (!u.port) throw new ConfigError(`URL address does not have the form "host:port": ${s}`);
    if (u.pathname !== '/' && u.pathname !== '') throw new ConfigError(`URL must not contain a path: ${s}`);
    out.push(`${u.protocol}//${u.host}`);
  }
  return out.sort();
}

/** PD's Go client: the cluster id (GetMembers) and a TSO, retried until the boot deadline. */
export interface PdFacts {
  clusterId: bigint;
  ts: bigint;
}

export async function reachPd(urls: string[], paths: TlsPaths | undefined, deadline: number, log: Logger): Promise<PdFacts> {
  const pd = new PdClient(urls, paths);
  for (let attempt = 0; ; attempt++) {
    try {
      const members = (await pd.json('/pd/api/v1/members')) as { header?: { cluster_id?: unknown } };
      const clusterId = asUint64(members.header?.cluster_id as never);
      return { clusterId, ts: await leaderTso(pd, paths) };
    } catch (e) {
      if (attempt % 5 === 0) log.warn('[pd] failed to get cluster id', { error: (e as Error).message });
      if (Date.now() > deadline) throw new Error('[pd] failed to get cluster id');
      await sleep(1000);
    }
  }
}

/** A TSO comes from the PD leader only (followers answer 503): ask every member, as PD's client follows the leader. */
async function leaderTso(pd: PdClient, paths: TlsPaths | undefined): Promise<bigint> {
  let reason = '';
  for (const ep of pd.endpoints) {
    try {
      const r = await httpRequest(`${pd.urlFor(ep)}/pd/api/v1/emulator/tso`, { method: 'POST', body: '{}', tls: paths ? clientTlsOptions(paths) : undefined, timeoutMs: 2000 });
      if (r.status === 200) return asUint64((parseJsonLossless(r.body) as { timestamp?: Json }).timestamp);
      reason = `${ep}: ${r.status} ${r.body.trim()}`;
    } catch (e) {
      reason = `${ep}: ${(e as Error).message}`;
    }
  }
  throw new Error(`no TSO from any PD (${reason})`);
}

/**
 * pkg/node EtcdRegistry.UpdateNode through clientv3: `http://` dials plaintext even with TLS
 * configured, `https://` dials TLS with the configured CA (or the system roots without one). An
 * unreachable etcd surfaces as the request timeout's "context deadline exceeded".
 */
export async function registerNode(urls: string[], paths: TlsPaths | undefined, kind: 'pumps' | 'drainers', status: Record<string, unknown>, log: Logger, timeoutMs = 5000): Promise<void> {
  const first = urls[0];
  const tlsOpts: tls.ConnectionOptions = first.startsWith('https:') && paths ? clientTlsOptions(paths) : { minVersion: 'TLSv1.2' };
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const body = JSON.stringify({ key: b64(`/tidb-binlog/v1/${kind}/${String(status.nodeId)}`), value: b64(toJson(status)) });
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    for (const u of urls) {
      try {
        const r = await httpRequest(`${u}/v3/kv/put`, { method: 'POST', body, tls: tlsOpts, timeoutMs: 2000 });
        if (r.status === 200) return;
        last = `HTTP ${r.status}: ${r.body.trim().slice(0, 200)}`;
      } catch (e) {
        last = (e as Error).message;
      }
    }
    if (Date.now() > deadline) {
      log.warn('etcd request failed', { endpoints: urls.join(','), error: last });
      throw new Error('context deadline exceeded');
    }
    await sleep(500);
  }
}

/** Every certificate of the client's verified chain (Go's verifiedChains walk), leaf first. */
function chainCNs(sock: tls.TLSSocket): string[] {
  const cns: string[] = [];
  const seen = new Set<unknown>();
  for (let c: tls.DetailedPeerCertificate | undefined = sock.getPeerCertificate(true); c && c.subject && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    const cn = c.subject.CN as unknown;
    cns.push(Array.isArray(cn) ? String(cn[0]) : typeof cn === 'string' ? cn : '');
  }
  return cns;
}

/**
 * The cmux port's HTTP side. With TLS (`ssl-ca` set): TLS 1.2+, cert+key re-read per handshake
 * (`GetCertificate` calls LoadX509KeyPair), no client certificate asked for unless
 * `cert-allowed-cn` is set; then RequireAndVerifyClientCert and a CN of the verified chain must
 * be listed (the connection is closed after the handshake: Node cannot fail it from a callback).
 */
export async function serveBinlogPort(
  addr: string,
  paths: TlsPaths | undefined,
  allowedCN: string[],
  handler: http.RequestListener,
  log: Logger,
): Promise<net.Server> {
  let srv: net.Server;
  if (paths) {
    const st = new ServerTls({ paths, requireClientCert: allowedCN.length > 0, reload: 'every-handshake', reloadCA: false, goRuntime: true }, log);
    const s = https.createServer(st.serverOptions(), handler);
    if (allowedCN.length) {
      s.prependListener('secureConnection', (sock: tls.TLSSocket) => {
        const cns = chainCNs(sock);
        if (cns.some((cn) => allowedCN.includes(cn))) return;
        log.warn('http: TLS handshake error', {
          error: `client certificate authentication failed. The Common Name from the client certificate [${cns.join(' ')}] was not found in the configuration cluster-verify-cn with value: [${allowedCN.join(' ')}]`,
        });
        sock.destroy();
      });
    }
    srv = st.attach(s);
  } else {
    srv = http.createServer(handler);
  }
  await listen(srv, addr);
  return srv;
}

export function json(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(toJson(body, 2));
}
