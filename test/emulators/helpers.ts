/**
 * Test equipment for the emulator tests: a shared compiled build of lab/emulators, real processes
 * (own process group each, so a PD's etcd child dies with it), openssl-made certificates, waits.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from 'child_process';
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '../..');
const SRC = path.join(ROOT, 'lab/emulators');
export const ENTRIES = ['pd-server', 'tikv-server', 'tidb-server', 'tiflash', 'cdc', 'pump', 'drainer', 'ngmonitoring'] as const;
export type Entry = (typeof ENTRIES)[number];

function listTs(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? listTs(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : [],
  );
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Compiles lab/emulators once per source content; parallel test files share the result. */
export function buildEmulators(): string {
  const files = listTs(SRC).sort();
  const h = crypto.createHash('sha256');
  for (const f of files) h.update(f).update(fs.readFileSync(f));
  const out = path.join(os.tmpdir(), `tiseal-emu-build-${h.digest('hex').slice(0, 16)}`);
  const done = path.join(out, '.done');
  const lock = `${out}.lock`;
  const deadline = Date.now() + 180000;
  while (!fs.existsSync(done)) {
    let mine = false;
    try {
      fs.mkdirSync(lock);
      mine = true;
    } catch {
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 120000) fs.rmSync(lock, { recursive: true, force: true });
    }
    if (mine) {
      try {
        if (!fs.existsSync(done)) {
          const tmp = `${out}.tmp-${process.pid}`;
          fs.rmSync(tmp, { recursive: true, force: true });
          execFileSync(
            process.execPath,
            [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '--outDir', tmp, '--rootDir', ROOT, '--module', 'commonjs',
              '--target', 'ES2022', '--strict', '--esModuleInterop', '--skipLibCheck', '--types', 'node',
              ...ENTRIES.map((e) => path.join(SRC, `${e}.ts`))],
            { cwd: ROOT, stdio: 'pipe' },
          );
          fs.writeFileSync(path.join(tmp, '.done'), '');
          fs.rmSync(out, { recursive: true, force: true });
          fs.renameSync(tmp, out);
        }
      } finally {
        fs.rmSync(lock, { recursive: true, force: true });
      }
    } else {
      if (Date.now() > deadline) throw new Error('timed out waiting for the emulator build');
      sleepSync(200);
    }
  }
  // Drop builds of older sources (kept an hour so a parallel run on other sources is not disturbed).
  for (const d of fs.readdirSync(os.tmpdir())) {
    const full = path.join(os.tmpdir(), d);
    if (d.startsWith('tiseal-emu-build-') && full !== out && !d.endsWith('.lock')) {
      const st = fs.statSync(full, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > 3600000) fs.rmSync(full, { recursive: true, force: true });
    }
  }
  return path.join(out, 'lab/emulators');
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  output(): string;
  exited: Promise<number | null>;
  exitCode(): number | null | undefined;
  stop(): Promise<void>;
}

const running = new Set<Proc>();
// If the worker ends without afterAll (crash, forced exit), still kill every process group we started.
process.on('exit', () => {
  for (const p of running) {
    try {
      process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

/**
 * The third octet of each emulator test file's loopback /24, one number per file: two files on one
 * number (jest runs files in parallel) would have their emulators answer each other on the same
 * addresses. Keyed by the file's path under test/; checked when this module loads, so a duplicate
 * fails every emulator test (and test/emulators/loopback-nets.test.ts names it).
 */
export const LOOPBACK_NETS: Readonly<Record<string, number>> = {
  'emulators/pd-cluster.test.ts': 1,
  'emulators/pd-tls.test.ts': 2,
  'emulators/tikv.test.ts': 3,
  'emulators/components.test.ts': 4,
  'emulators/tidb-mysql.test.ts': 5,
  'emulators/pd-join.test.ts': 7,
  'emulators/regions.test.ts': 8,
  'emulators/status-reload.test.ts': 9,
  'emulators/pd-gateway.test.ts': 11,
  'emulators/binlog.test.ts': 13,
  'emulators/ngmonitoring.test.ts': 14,
};

/** Problems of a registry: a number outside 1..254, or one number for two files. */
export function loopbackNetProblems(nets: Readonly<Record<string, number>>): string[] {
  const out: string[] = [];
  const seen = new Map<number, string>();
  for (const [file, id] of Object.entries(nets)) {
    if (!Number.isInteger(id) || id < 1 || id > 254) out.push(`${file}: ${id} is not in 1..254`);
    const other = seen.get(id);
    if (other !== undefined) out.push(`${file}: ${id} is already ${other}'s`);
    else seen.set(id, file);
  }
  return out;
}

{
  const problems = loopbackNetProblems(LOOPBACK_NETS);
  if (problems.length) throw new Error(`LOOPBACK_NETS in test/emulators/helpers.ts: ${problems.join('; ')}`);
}

/**
 * A fresh loopback /24 for one test file, `loopbackNet(__filename)`: the third octet from
 * LOOPBACK_NETS, the second random (100..199), so stale processes of an aborted run never answer.
 */
export function loopbackNet(testFile: string): (n: number) => string {
  const key = path.relative(path.join(ROOT, 'test'), testFile).split(path.sep).join('/');
  const id = LOOPBACK_NETS[key];
  if (id === undefined) throw new Error(`${key} has no loopback net: add it to LOOPBACK_NETS in test/emulators/helpers.ts`);
  const second = 100 + Math.floor(Math.random() * 100);
  return (n: number) => `127.${second}.${id}.${n}`;
}

export function startEmulator(
  buildDir: string,
  entry: Entry,
  args: string[],
  opts: { cwd: string; version?: string; env?: Record<string, string> },
): Proc {
  fs.mkdirSync(opts.cwd, { recursive: true });
  const child = spawn(process.execPath, [path.join(buildDir, `${entry}.js`), ...args], {
    cwd: opts.cwd,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      NODE_PATH: path.join(ROOT, 'node_modules'),
      TISEAL_EMULATED_VERSION: opts.version ?? 'v8.5.1',
      ...opts.env,
    },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  let code: number | null | undefined;
  const exited = new Promise<number | null>((r) => child.on('exit', (c, sig) => r((code = c ?? (sig ? 128 : null)))));
  const p: Proc = {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    exitCode: () => code,
    stop: async () => {
      if (code === undefined) {
        try {
          process.kill(-child.pid!, 'SIGTERM');
        } catch {
          /* gone */
        }
        const t = setTimeout(() => {
          try {
            process.kill(-child.pid!, 'SIGKILL');
          } catch {
            /* gone */
          }
        }, 6000);
        await exited;
        clearTimeout(t);
      }
      // The process group may still hold the etcd child if PD died abruptly.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* gone */
      }
      running.delete(p);
    },
  };
  running.add(p);
  return p;
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

/** What the shared starters need from a test file: the emulator build, its temp dir, its loopback net. */
export interface EmuEnv {
  build: string;
  base: string;
  ip: (n: number) => string;
}

export interface PdOptions {
  scheme?: 'http' | 'https';
  /** conf/pd.toml; when undefined the file is left as the test wrote it. */
  toml?: string;
  /** Emulated release (default v8.5.1). */
  version?: string;
  /** Its directory under base (default `pd-<n>`): cwd, conf/, log/, data/. */
  dir?: string;
  dataDir?: string;
  /** Membership flags instead of the default one-member `--initial-cluster` (`--join=…`, `--force-new-cluster`, …). */
  cluster?: string[];
  /** Also pass `--advertise-client-urls` / `--advertise-peer-urls` (the same URLs). */
  advertise?: boolean;
  /** Flags after the others. */
  extra?: string[];
  env?: Record<string, string>;
}

/** A PD emulator on ip(n):2379 (client) and ip(n):2380 (peer), flags as TiUP's run_pd.sh passes them. */
export function startPd(e: EmuEnv, n: number, o: PdOptions = {}): Proc {
  const scheme = o.scheme ?? 'http';
  const dir = path.join(e.base, o.dir ?? `pd-${n}`);
  if (o.toml !== undefined) writeFile(path.join(dir, 'conf/pd.toml'), o.toml);
  const client = `${scheme}://${e.ip(n)}:2379`;
  const peer = `${scheme}://${e.ip(n)}:2380`;
  return startEmulator(e.build, 'pd-server', [
    `--name=pd-${n}`,
    `--client-urls=${client}`,
    ...(o.advertise ? [`--advertise-client-urls=${client}`] : []),
    `--peer-urls=${peer}`,
    ...(o.advertise ? [`--advertise-peer-urls=${peer}`] : []),
    `--data-dir=${o.dataDir ?? path.join(dir, 'data')}`,
    ...(o.cluster ?? [`--initial-cluster=pd-${n}=${peer}`]),
    '--config=conf/pd.toml',
    '--log-file=log/pd.log',
    ...(o.extra ?? []),
  ], { cwd: dir, version: o.version, env: o.env });
}

export interface TikvOptions {
  /** `--pd` as TiUP passes it: host:port list, or URLs. */
  pd: string;
  /** conf/tikv.toml; when undefined the file is left as the test wrote it. */
  toml?: string;
  /** Its directory under base (default `tikv-<n>`). */
  dir?: string;
  /** Also pass `--advertise-addr` / `--advertise-status-addr` (the same addresses). */
  advertise?: boolean;
  version?: string;
  env?: Record<string, string>;
}

/** A TiKV emulator on ip(n):20160 (server) and ip(n):20180 (status), flags as TiUP's run_tikv.sh passes them. */
export function startTikv(e: EmuEnv, n: number, o: TikvOptions): Proc {
  const dir = path.join(e.base, o.dir ?? `tikv-${n}`);
  if (o.toml !== undefined) writeFile(path.join(dir, 'conf/tikv.toml'), o.toml);
  const addr = `${e.ip(n)}:20160`;
  const status = `${e.ip(n)}:20180`;
  return startEmulator(e.build, 'tikv-server', [
    '--addr', addr, ...(o.advertise ? ['--advertise-addr', addr] : []),
    '--status-addr', status, ...(o.advertise ? ['--advertise-status-addr', status] : []),
    '--pd', o.pd, '--data-dir', path.join(dir, 'data'), '--config', 'conf/tikv.toml', '--log-file', 'log/tikv.log',
  ], { cwd: dir, version: o.version, env: o.env });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20000, everyMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `tiseal-emu-${prefix}-`));
}

/** openssl-made CA and leaf certificates (EC P-256; SANs = IPs + localhost; serverAuth+clientAuth). */
export class Pki {
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    if (!fs.existsSync(this.ca)) {
      openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', path.join(dir, 'ca.pem'),
        '-out', this.ca, '-days', '30', '-subj', '/CN=tiseal-test-ca']);
    }
  }
  get ca(): string {
    return path.join(this.dir, 'ca.crt');
  }
  issue(name: string, cn: string, ips: string[], serial?: string): { cert: string; key: string } {
    const key = path.join(this.dir, `${name}.pem`);
    const csr = path.join(this.dir, `${name}.csr`);
    const cert = path.join(this.dir, `${name}.crt`);
    const ext = path.join(this.dir, `${name}.ext`);
    fs.writeFileSync(ext, `subjectAltName=${[...ips.map((i) => `IP:${i}`), 'IP:127.0.0.1', 'DNS:localhost'].join(',')}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', this.ca, '-CAkey', path.join(this.dir, 'ca.pem'), '-out', cert, '-days', '10',
      '-extfile', ext, ...(serial ? ['-set_serial', serial] : ['-CAcreateserial'])]);
    return { cert, key };
  }
}

export function openssl(args: string[]): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** curl with the given TLS material; returns exit code, HTTP code and body. */
export function curl(url: string, o: { ca?: string; cert?: string; key?: string; method?: string; data?: string } = {}): { code: number; http: number; body: string; stderr: string } {
  const args = ['-sS', '--max-time', '5', '-o', '-', '-w', '\n%{http_code}'];
  if (o.ca) args.push('--cacert', o.ca);
  if (o.cert) args.push('--cert', o.cert);
  if (o.key) args.push('--key', o.key);
  if (o.method) args.push('-X', o.method);
  if (o.data !== undefined) args.push('-H', 'content-type: application/json', '--data', o.data);
  const r = spawnSync('curl', [...args, url], { encoding: 'utf8' });
  const lines = (r.stdout ?? '').split('\n');
  const http = Number(lines.pop());
  return { code: r.status ?? -1, http, body: lines.join('\n'), stderr: r.stderr ?? '' };
}

export function writeFile(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}
