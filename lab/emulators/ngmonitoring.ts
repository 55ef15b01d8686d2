/**
 * tiseal lab EMULATOR of ng-monitoring-server (Top SQL / Continuous Profiling backend started by
 * TiUP's run_prometheus.sh; test equipment, not the real component). See README.md.
 * pingcap/ng-monitoring (master, ec43d0ad): main.go (pflag flags, "Failed to initialize config"),
 * config/config.go (BurntSushi toml.DecodeFile: unknown keys ignored, wrong types refused; valid();
 * Security.GetTLSConfig: TLS only when ca-path, cert-path and key-path are all set, else plain;
 * GetHTTPScheme), component/domain/client.go (createClientWithRetry: `<scheme>://<endpoint>` +
 * GetHealth until it answers, backoff 10 ms → 1 s, a warning every 5 s), component/topology/
 * discovery.go (PD members + health and stores over PD's API, TiDB and TiCDC from PD's etcd; every
 * 30 s; a failed round keeps the last topology), service/service.go + service/http/http.go (the port
 * always serves plain HTTP: /health, /config, /continuous_profiling/estimate_size, /metrics).
 */
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { FlagError, FlagSpec, flagBool, flagString, parseFlags } from './common/flags';
import { httpRequest, sleep } from './common/http';
import { Logger, timestamp } from './common/log';
import { onShutdown } from './common/process';
import { metricsText } from './common/status-http';
import { clientTlsOptions, listen, TlsPaths } from './common/tls';
import { isTable, loadTomlFile, Table } from './common/toml';
import { grpcUnary, pbBytes, pbDecode } from './pd/etcd-grpc';
import { emulatedVersion } from './common/version';

// main.go: the global pflag set (ExitOnError: the error, the usage, exit 2).
const FLAGS: FlagSpec[] = [
  { name: 'version', short: 'V', bool: true },
  ...['address', 'pd.endpoints', 'log.path', 'storage.path', 'config', 'advertise-address', 'retention-period'].map((name) => ({ name })),
];

interface Config {
  address: string;
  advertise_address: string;
  pd: { endpoints: string[] };
  log: { path: string; level: string };
  storage: { path: string };
  security: { ca_path: string; cert_path: string; key_path: string };
  tsdb: { retention_period: string; search_max_unique_timeseries: number };
}

/** stdlog.Fatalf: Go's standard logger line, exit 1. */
function stdFatal(msg: string): never {
  const d = new Date();
  const p = (n: number) => String(n).padStart(2, '0');
  process.stderr.write(`${d.getFullYear()}/${p(d.getMonth() + 1)}/${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${msg}\n`);
  process.exit(1);
}

const goType = (v: unknown): string =>
  Array.isArray(v) ? 'array' : isTable(v) ? 'table' : typeof v === 'bigint' || typeof v === 'number' ? (Number.isInteger(Number(v)) ? 'integer' : 'float') : typeof v === 'boolean' ? 'bool' : v instanceof Date ? 'datetime' : 'string';

/** BurntSushi's decode into Config: keys the struct lacks are skipped, a value of the wrong type fails. */
function decodeInto(cfg: Config, doc: Table): void {
  const mismatch = (key: string, v: unknown, dest: string) => new Error(`toml: (last key "${key}"): incompatible types: TOML value has type ${goType(v)}; destination has type ${dest}`);
  const str = (key: string, v: unknown): string => {
    if (typeof v !== 'string') throw mismatch(key, v, 'string');
    return v;
  };
  const table = (key: string): Table | undefined => {
    const t = doc[key];
    if (t === undefined) return undefined;
    if (!isTable(t)) throw mismatch(key, t, 'struct');
    return t;
  };
  if (doc.address !== undefined) cfg.address = str('address', doc.address);
  if (doc['advertise-address'] !== undefined) cfg.advertise_address = str('advertise-address', doc['advertise-address']);
  const pd = table('pd');
  if (pd?.endpoints !== undefined) {
    if (!Array.isArray(pd.endpoints)) throw mismatch('pd.endpoints', pd.endpoints, 'slice');
    cfg.pd.endpoints = pd.endpoints.map((e) => str('pd.endpoints', e));
  }
  const log = table('log');
  if (log?.path !== undefined) cfg.log.path = str('log.path', log.path);
  if (log?.level !== undefined) cfg.log.level = str('log.level', log.level);
  const storage = table('storage');
  if (storage?.path !== undefined) cfg.storage.path = str('storage.path', storage.path);
  const sec = table('security');
  for (const [k, f] of [['ca-path', 'ca_path'], ['cert-path', 'cert_path'], ['key-path', 'key_path']] as const) {
    if (sec?.[k] !== undefined) cfg.security[f] = str(`security.${k}`, sec[k]);
  }
}

/** config.go validateAddress (net.SplitHostPort + port 0 refused). */
function validateAddress(address: string, name: string): void {
  if (!address) throw new Error(`unexpected empty ${name}`);
  const m = /^(\[[^\]]*\]|[^:]*):([^:]*)$/.exec(address);
  let err = '';
  if (!m) err = `address ${address}: ${address.includes(':') ? 'too many colons in address' : 'missing port in address'}`;
  else if (!/^\d+$/.test(m[2])) err = `strconv.Atoi: parsing ${JSON.stringify(m[2])}: invalid syntax`;
  else if (Number(m[2]) === 0) err = 'port cannot be set to 0';
  if (err) throw new Error(`${name} ${address} is invalid, err: ${err}`);
}

function initConfig(argv: string[]): { cfg: Config; configPath: string } {
  let f;
  try {
    f = parseFlags(argv, FLAGS, 'pflag', 'ng-monitoring-server');
  } catch (e) {
    if (!(e instanceof FlagError)) throw e;
    // Plain pflag.Parse (no cobra): no "Error: " prefix, the usage, exit 2.
    process.stderr.write(`${e.message.replace(/^Error: /, '')}\nUsage of ng-monitoring-server:\n`);
    process.exit(2);
  }
  if (flagBool(f, 'version')) {
    process.stdout.write(`Git Commit Hash: tiseal-emulator\nUTC Build Time: -\nGit Branch: -\nRelease Version: ${emulatedVersion().text}\n`);
    process.exit(0);
  }
  const cfg: Config = {
    address: '0.0.0.0:12020', advertise_address: '', pd: { endpoints: ['127.0.0.1:2379'] }, log: { path: '', level: 'INFO' },
    storage: { path: 'data' }, security: { ca_path: '', cert_path: '', key_path: '' }, tsdb: { retention_period: '1', search_max_unique_timeseries: 300000 },
  };
  const configPath = flagString(f, 'config') ?? '';
  try {
    if (configPath) decodeInto(cfg, loadTomlFile(configPath));
    const over = (flag: string, set: (v: string) => void) => {
      const v = flagString(f, flag);
      if (v !== undefined) set(v);
    };
    over('address', (v) => (cfg.address = v));
    over('pd.endpoints', (v) => (cfg.pd.endpoints = v.split(',')));
    over('log.path', (v) => (cfg.log.path = v));
    over('storage.path', (v) => (cfg.storage.path = v));
    over('advertise-address', (v) => (cfg.advertise_address = v));
    over('retention-period', (v) => (cfg.tsdb.retention_period = v));
    cfg.address = cfg.address.trim();
    cfg.advertise_address = cfg.advertise_address.trim();
    cfg.pd.endpoints = cfg.pd.endpoints.map((e) => e.trim());
    if (!cfg.advertise_address) cfg.advertise_address = cfg.address; // upstream swaps 0.0.0.0 for a local IP first
    validateAddress(cfg.address, 'address');
    validateAddress(cfg.advertise_address, 'advertise-address');
    if (cfg.pd.endpoints.length === 0) throw new Error('unexpected empty pd endpoints, please specify at least one, e.g. --pd.endpoints "127.0.0.1:2379"');
    if (!cfg.log.level) throw new Error('unexpected empty log level');
    if (!['DEBUG', 'INFO', 'WARN', 'ERROR'].includes(cfg.log.level)) throw new Error('log level should be DEBUG, INFO, WARN or ERROR');
    if (!cfg.storage.path) throw new Error('unexpected empty storage path');
  } catch (e) {
    stdFatal(`Failed to initialize config, err: ${(e as Error).message}`);
  }
  return { cfg, configPath };
}

interface Component {
  name: 'tidb' | 'pd' | 'tikv' | 'tiflash' | 'ticdc';
  ip: string;
  port: number;
  status_port: number;
}

// conprof/http/api.go getProfileEstimateSize.
const PROFILE_SIZE: Record<Component['name'], number> = { pd: 175 * 1024, tidb: 630 * 1024, ticdc: 630 * 1024, tikv: 400 * 1024, tiflash: 0 };

function hostPort(addr: string): { ip: string; port: number } {
  const m = /^(?:[a-z]+:\/\/)?\[?([^\]/]*?)\]?:(\d+)/.exec(addr);
  return m ? { ip: m[1], port: Number(m[2]) } : { ip: addr, port: 0 };
}

/** The clients of one PD endpoint: PD's HTTP API and its etcd (through the same port and TLS). */
class PdClients {
  constructor(readonly base: string, private readonly tls: TlsPaths | undefined) {}

  async get(p: string, body?: string): Promise<unknown> {
    const r = await httpRequest(this.base + p, { method: body === undefined ? 'GET' : 'POST', body, timeoutMs: 5000, tls: this.tls ? clientTlsOptions(this.tls) : undefined });
    if (r.status !== 200) throw new Error(`${p}: ${r.status} ${r.body.trim().slice(0, 200)}`);
    return JSON.parse(r.body);
  }

  /**
   * topology/discovery.go reads etcd with clientv3 (gRPC KV.Range on PD's client port), not PD's
   * JSON gateway: the gateway fails at PD v8.4+ with several CNs (etcd-io/etcd#15755), gRPC does not.
   */
  async etcdPrefix(prefix: string): Promise<Map<string, string>> {
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const tlsPaths = this.tls;
    const res = pbDecode(await grpcUnary(this.base, '/etcdserverpb.KV/Range', Buffer.concat([pbBytes(1, prefix), pbBytes(2, end)]), tlsPaths ? () => clientTlsOptions(tlsPaths) : undefined, 5000));
    // RangeResponse.kvs = 2; KeyValue.key = 1, value = 5 (etcd api/mvccpb/kv.proto)
    const out = new Map<string, string>();
    for (const kv of res.get(2) ?? []) {
      const f = pbDecode(kv as Buffer);
      out.set(String((f.get(1)?.[0] as Buffer | undefined) ?? ''), String((f.get(5)?.[0] as Buffer | undefined) ?? ''));
    }
    return out;
  }
}

/** domain/client.go createClient: the first endpoint whose GetHealth answers. */
async function createClient(cfg: Config, tls: TlsPaths | undefined): Promise<PdClients> {
  let err: Error | undefined;
  for (const ep of cfg.pd.endpoints) {
    const c = new PdClients(`${tls ? 'https' : 'http'}://${ep}`, tls);
    try {
      await c.get('/pd/api/v1/health');
      return c;
    } catch (e) {
      err = e as Error;
    }
  }
  throw err ?? new Error('can\'t create pd client, should never happen');
}

/** topology/discovery.go fetchAllScrapeTargets: any failing source fails the round. */
async function fetchTopology(c: PdClients): Promise<Component[]> {
  const out: Component[] = [];
  const tidb = await c.etcdPrefix('/topology/tidb/');
  for (const [k, v] of tidb) {
    const m = /^\/topology\/tidb\/(.+)\/info$/.exec(k);
    if (!m || !tidb.has(`/topology/tidb/${m[1]}/ttl`)) continue; // no ttl key: not alive
    const info = JSON.parse(v) as { status_port?: number };
    out.push({ name: 'tidb', ...hostPort(m[1]), status_port: Number(info.status_port ?? 0) });
  }
  const members = ((await c.get('/pd/api/v1/members')) as { members?: { name: string; client_urls?: string[] }[] }).members ?? [];
  const health = (await c.get('/pd/api/v1/health')) as { name: string; health: boolean }[];
  for (const m of members) {
    if (!health.some((h) => h.name === m.name && h.health)) continue;
    const hp = hostPort(m.client_urls?.[0] ?? '');
    out.push({ name: 'pd', ...hp, status_port: hp.port });
  }
  const stores = ((await c.get('/pd/api/v1/stores')) as { stores?: { store: { address: string; status_address?: string; state_name?: string; labels?: { key: string; value: string }[] } }[] }).stores ?? [];
  for (const { store: s } of stores) {
    if (s.state_name !== 'Up') continue;
    const tiflash = (s.labels ?? []).some((l) => l.key === 'engine' && l.value === 'tiflash');
    out.push({ name: tiflash ? 'tiflash' : 'tikv', ...hostPort(s.address), status_port: hostPort(s.status_address ?? '').port });
  }
  for (const [, v] of await c.etcdPrefix('/tidb/cdc/default/__cdc_meta__/capture/')) {
    const cap = JSON.parse(v) as { address?: string };
    const hp = hostPort(cap.address ?? '');
    out.push({ name: 'ticdc', ...hp, status_port: hp.port });
  }
  return out;
}

async function main(): Promise<void> {
  const { cfg } = initConfig(process.argv.slice(2));
  const log = new Logger('ng-monitoring', cfg.log.path ? path.join(cfg.log.path, 'ng.log') : undefined);
  log.info('Welcome to ng-monitoring [tiseal emulator]', { 'Release Version': emulatedVersion().text, time: timestamp() });
  fs.mkdirSync(cfg.storage.path, { recursive: true });
  const s = cfg.security;
  const tls: TlsPaths | undefined = s.ca_path && s.cert_path && s.key_path ? { ca: s.ca_path, cert: s.cert_path, key: s.key_path } : undefined;
  if (tls) {
    try {
      clientTlsOptions(tls); // transport.TLSInfo.ClientConfig, on the first GetTLSConfig
    } catch (e) {
      log.fatal('Failed to load certificates', { error: (e as Error).message });
    }
  }

  let components: Component[] = [];
  let stopped = false;
  const handler: http.RequestListener = (req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && p === '/health') json({ health: true });
    else if (req.method === 'GET' && p === '/config') json(cfg);
    else if (req.method === 'GET' && p === '/continuous_profiling/estimate_size') {
      // conprof/http/api.go handleEstimateSize (default interval 60 s).
      json({ instance_count: components.length, profile_size: (86400 / 60) * components.reduce((n, c) => n + PROFILE_SIZE[c.name], 0) });
    } else if (p === '/metrics') {
      // promhttp on the same plain port: TiUP's prometheus.yml scrapes it (job "ng-monitoring").
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metricsText('ng_monitoring', emulatedVersion().text));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('404 page not found');
    }
  };
  const srv = http.createServer(handler);
  try {
    await listen(srv, cfg.address);
  } catch (e) {
    log.fatal('failed to listen', { address: cfg.address, error: (e as Error).message });
  }
  log.info('starting http service', { address: cfg.address });
  let timer: NodeJS.Timeout | undefined;
  onShutdown(log, () => {
    stopped = true;
    clearInterval(timer);
    srv.close();
  });

  // createClientWithRetry: forever, never exits on an unreachable PD.
  let client: PdClients | undefined;
  let backoff = 10;
  let warned = Date.now(); // the first warning only after 5 s, as upstream
  while (!client && !stopped) {
    try {
      client = await createClient(cfg, tls);
      log.info('create pd client success', { 'pd-address': client.base });
    } catch (e) {
      if (Date.now() - warned > 5000) {
        warned = Date.now();
        log.warn('create pd/etcd client failed', { error: (e as Error).message });
      }
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 1000);
    }
  }
  if (!client) return;
  const discover = async () => {
    try {
      components = await fetchTopology(client);
      log.info('load topology success', { components: components.length });
    } catch (e) {
      log.error('load topology failed', { error: (e as Error).message });
    }
  };
  await discover();
  if (!stopped) timer = setInterval(() => void discover(), 30_000);
}

main().catch((e) => {
  process.stderr.write(`[FATAL] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
