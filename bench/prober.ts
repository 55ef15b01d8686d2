/**
 * The outage prober: its own process, a client of the cluster like any application. Every
 * `intervalMs` it writes a key through PD (etcd's JSON gateway on PD's client port, /v3/kv/put),
 * reads it back (/v3/kv/range), and calls TiDB's status port (/status). A tick is answered when
 * some PD did both and some TiDB answered. It follows the cluster from http to https: the last
 * scheme that worked is tried first, the other one next (the client certificate is read when it
 * appears). One JSON line per tick on stdout; stops on SIGTERM.
 *
 * Usage: node prober.js '<json ProberConfig>'
 */
import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';

export interface ProberConfig {
  pd: string[];
  tidbStatus: string[];
  /** Client TLS files (used once they exist). */
  tls: { ca: string; cert: string; key: string };
  intervalMs: number;
  timeoutMs: number;
}

export interface Tick {
  /** ms since the epoch at the start and end of the tick's probes */
  t0: number;
  t1: number;
  ok: boolean;
  pd: boolean;
  tidb: boolean;
  error?: string;
}

type Scheme = 'http' | 'https';

function request(scheme: Scheme, hostPort: string, path: string, body: string | undefined, cfg: ProberConfig): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const [host, port] = [hostPort.slice(0, hostPort.lastIndexOf(':')), Number(hostPort.slice(hostPort.lastIndexOf(':') + 1))];
    const base = { host, port, path, method: body === undefined ? 'GET' : 'POST', agent: false as const, timeout: cfg.timeoutMs, headers: body === undefined ? {} : { 'content-type': 'application/json' } };
    const done = (res: http.IncomingMessage) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    };
    let req: http.ClientRequest;
    if (scheme === 'https') {
      if (!fs.existsSync(cfg.tls.cert)) return reject(new Error('no client certificate yet'));
      req = https.request({ ...base, ca: fs.readFileSync(cfg.tls.ca), cert: fs.readFileSync(cfg.tls.cert), key: fs.readFileSync(cfg.tls.key) }, done);
    } else {
      req = http.request(base, done);
    }
    req.on('timeout', () => req.destroy(new Error(`timeout after ${cfg.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Try the preferred scheme, then the other; remember what worked. */
async function withScheme<T>(pref: { scheme: Scheme }, fn: (s: Scheme) => Promise<T>): Promise<T> {
  try {
    return await fn(pref.scheme);
  } catch (first) {
    const other: Scheme = pref.scheme === 'http' ? 'https' : 'http';
    try {
      const r = await fn(other);
      pref.scheme = other;
      return r;
    } catch {
      throw first;
    }
  }
}

/** First endpoint (last good one first) for which `fn` succeeds. */
async function anyOf(endpoints: string[], last: { i: number }, fn: (ep: string) => Promise<void>): Promise<void> {
  let err: unknown;
  for (let k = 0; k < endpoints.length; k++) {
    const i = (last.i + k) % endpoints.length;
    try {
      await fn(endpoints[i]);
      last.i = i;
      return;
    } catch (e) {
      err = e;
    }
  }
  throw err;
}

export async function probeOnce(cfg: ProberConfig, state: { pdScheme: { scheme: Scheme }; tidbScheme: { scheme: Scheme }; pdLast: { i: number }; tidbLast: { i: number }; n: number }): Promise<Tick> {
  const t0 = Date.now();
  const value = `${process.pid}-${state.n++}`;
  const errors: string[] = [];
  const pd = anyOf(cfg.pd, state.pdLast, (ep) =>
    withScheme(state.pdScheme, async (scheme) => {
      const put = await request(scheme, ep, '/v3/kv/put', JSON.stringify({ key: b64('tiseal-bench/probe'), value: b64(value) }), cfg);
      if (put.status !== 200) throw new Error(`put: HTTP ${put.status}`);
      const get = await request(scheme, ep, '/v3/kv/range', JSON.stringify({ key: b64('tiseal-bench/probe') }), cfg);
      const kvs = (JSON.parse(get.text || '{}') as { kvs?: Array<{ value: string }> }).kvs ?? [];
      if (get.status !== 200 || kvs[0]?.value !== b64(value)) throw new Error(`get: HTTP ${get.status}, read back ${kvs[0]?.value ?? 'nothing'}`);
    }),
  ).then(
    () => true,
    (e: Error) => (errors.push(`pd: ${e.message}`), false),
  );
  const tidb = anyOf(cfg.tidbStatus, state.tidbLast, (ep) =>
    withScheme(state.tidbScheme, async (scheme) => {
      const r = await request(scheme, ep, '/status', undefined, cfg);
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    }),
  ).then(
    () => true,
    (e: Error) => (errors.push(`tidb: ${e.message}`), false),
  );
  const [pdOk, tidbOk] = await Promise.all([pd, tidb]);
  const tick: Tick = { t0, t1: Date.now(), ok: pdOk && tidbOk, pd: pdOk, tidb: tidbOk };
  if (errors.length) tick.error = errors.join('; ');
  return tick;
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]) as ProberConfig;
  const state = { pdScheme: { scheme: 'http' as Scheme }, tidbScheme: { scheme: 'http' as Scheme }, pdLast: { i: 0 }, tidbLast: { i: 0 }, n: 0 };
  let stopping = false;
  process.on('SIGTERM', () => (stopping = true));
  process.on('SIGINT', () => (stopping = true));
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + '\n');
  let next = Date.now();
  while (!stopping) {
    const tick = await probeOnce(cfg, state);
    process.stdout.write(JSON.stringify(tick) + '\n');
    next += cfg.intervalMs;
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else next = Date.now(); // a slow tick: start the next one now, do not burst to catch up
  }
}

if (require.main === module) {
  main().catch((e) => {
    process.stderr.write(`prober: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
