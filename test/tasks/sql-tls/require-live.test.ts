/**
 * tiseal's require_secure_transport decisions against the TiDB emulator's MySQL server in-process
 * (TLS from a test SQL CA; several ports share one `cluster.on`, as TiDBs v6.1+ share the persisted
 * variable): from v6.1 it is read and set live only, tidb.toml is not written; `disable` turns it
 * OFF before any restart; a plaintext login refused with 3159 reads as ON.
 */
import * as fs from 'fs';
import type { AddressInfo, Server } from 'net';
import * as os from 'os';
import * as path from 'path';
import type { Logger } from '../../../lab/emulators/common/log';
import { createMysqlServer } from '../../../lab/emulators/common/mysql-server';
import { loadMysqlTls } from '../../../lab/emulators/common/mysql-tls';
import { PdClient } from '../../../src/pd/client';
import { createCA, issueLeaf } from '../../../src/pki';
import { sqlTlsSteps } from '../../../src/plans/sql-tls';
import { FakePool } from '../../../src/ssh';
import { ClusterDir } from '../../../src/state/cluster-dir';
import { readLiveRequire } from '../../../src/sql/require';
import type { SqlTlsContext } from '../../../src/tasks/sql-tls/context';
import { sqlRequireOffStep, sqlRequireSteps } from '../../../src/tasks/sql-tls/require';
import { parseTopology } from '../../../src/topology';
import type { GlobalOptions } from '../../../src/options';

jest.setTimeout(60_000);

const quiet = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} } as unknown as Logger;
const TOML_PATH = (port: number) => `/tidb-deploy/tidb-${port}/conf/tidb.toml`;
const TOML_TEXT = '[security]\nssl-ca = "/x/sql-ca.crt"\nssl-cert = "/x/sql.crt"\nssl-key = "/x/sql.pem"\n';

let dir: string;
let caPem: string;
let files: { ca: string; cert: string; key: string };
const cluster = { on: false };
const servers: Server[] = [];

async function tidb(version: string, tls = true): Promise<number> {
  const sqlTls = tls ? loadMysqlTls(files, { tlsVersion: '', requireSecureTransport: false }) : undefined;
  const serverVersion = `8.0.11-TiDB-${version}`;
  const srv = createMysqlServer({
    serverVersion, log: quiet, rootPassword: () => '', offerSsl: tls,
    ctx: {
      serverVersion, tidbVersionText: `Release Version: ${version}`, requireSecureTransport: () => cluster.on,
      setRequireSecureTransport: async (on) => void (cluster.on = on), currentTls: () => sqlTls, reloadTls() {},
      kv: { put: async () => false, get: async () => undefined },
    },
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  servers.push(srv);
  return (srv.address() as AddressInfo).port;
}

function context(want: 'on' | 'off', ports: number[]): SqlTlsContext {
  const yaml = `global:\n  user: tidb\npd_servers:\n  - host: 127.0.0.1\ntikv_servers:\n  - host: 127.0.0.1\ntidb_servers:\n${ports.map((p) => `  - host: 127.0.0.1\n    port: ${p}\n    status_port: ${p + 1}\n    deploy_dir: /tidb-deploy/tidb-${p}\n`).join('')}`;
  const pool = new FakePool();
  for (const p of ports) pool.host('127.0.0.1').addFile(TOML_PATH(p), TOML_TEXT, { owner: 'tidb', mode: 0o644 });
  return {
    want: 'on', runId: 'r1', topology: parseTopology(yaml, path.join(dir, 'topo.yaml')), opts: { stateDir: dir, concurrency: 4 } as GlobalOptions,
    cluster: new ClusterDir(dir, 'lab'), pool, pd: new PdClient([], undefined), user: 'tidb', removedPds: [], flags: { certDays: 365, caDays: 3650 }, notes: [], resuming: false,
    sql: { want, flags: { certDays: 365, caDays: 3650 }, creds: { user: 'root', password: '' }, clusterTls: false, caPem },
  };
}

async function apply(ctx: SqlTlsContext, step: { decide(c: SqlTlsContext): Promise<{ actions: { title: string; run(): Promise<unknown> }[] }>; verify?(c: SqlTlsContext): Promise<void> }): Promise<string[]> {
  const d = await step.decide(ctx);
  for (const a of d.actions) await a.run();
  await step.verify?.(ctx);
  return d.actions.map((a) => a.title.replace(/127\.0\.0\.1:\d+/, 'TIDB'));
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-require-'));
  const ca = await createCA({ cluster: 'lab', commonName: 'test SQL CA', keyType: 'ecdsa' });
  const leaf = await issueLeaf(ca, { commonName: 'tidb', hosts: ['127.0.0.1'], keyType: 'ecdsa' });
  caPem = ca.bundlePem;
  files = { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'sql.crt'), key: path.join(dir, 'sql.pem') };
  fs.writeFileSync(files.ca, caPem);
  fs.writeFileSync(files.cert, leaf.fullChainPem);
  fs.writeFileSync(files.key, leaf.keyPem);
});
afterEach(() => void (cluster.on = false));
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('require_secure_transport read and set live (TiDB v6.1+: a cluster-wide variable)', () => {
  it('require at v8.5: one SET GLOBAL for the whole cluster, tidb.toml untouched; --off likewise', async () => {
    const ports = [await tidb('v8.5.1'), await tidb('v8.5.1')];
    const ctx = context('on', ports);
    const steps = sqlRequireSteps(ctx);
    expect(await apply(ctx, steps[0])).toEqual(['SET GLOBAL require_secure_transport = ON on TIDB (persisted; every TiDB applies it)']);
    expect(await apply(ctx, steps[1])).toEqual([]); // the second TiDB already applies it
    expect(cluster.on).toBe(true);
    for (const p of ports) expect((ctx.pool as FakePool).host('127.0.0.1').readText(TOML_PATH(p))).toBe(TOML_TEXT);
    const off = context('off', ports);
    expect(await apply(off, sqlRequireSteps(off)[0])).toEqual(['SET GLOBAL require_secure_transport = OFF on TIDB (persisted; every TiDB applies it)']);
    expect(cluster.on).toBe(false);
  });

  it('require before v6.1: SET GLOBAL on each TiDB and require-secure-transport in tidb.toml', async () => {
    const port = await tidb('v6.0.0');
    const ctx = context('on', [port]);
    const titles = await apply(ctx, sqlRequireSteps(ctx)[0]);
    expect(titles[0]).toBe('SET GLOBAL require_secure_transport = ON on TIDB');
    expect((ctx.pool as FakePool).host('127.0.0.1').readText(TOML_PATH(port))).toMatch(/require-secure-transport = true/);
  });

  it('disable turns require OFF before the first restart, once, over TLS; nothing to do when it is OFF', async () => {
    const ports = [await tidb('v8.5.1'), await tidb('v8.5.1')];
    const ctx = context('off', ports);
    expect(sqlTlsSteps(ctx).map((s) => s.id)).toEqual(['sql-certificates', 'sql-require-off', 'sql-stage', ...ports.map((p) => `sql-restart-tidb-${p}@127.0.0.1`)]);
    expect(sqlTlsSteps(context('on', ports)).map((s) => s.id)).not.toContain('sql-require-off');
    cluster.on = true;
    expect(await apply(ctx, sqlRequireOffStep)).toEqual(['SET GLOBAL require_secure_transport = OFF on TIDB (persisted; every TiDB applies it)']);
    expect(cluster.on).toBe(false);
    expect(await apply(ctx, sqlRequireOffStep)).toEqual([]);
  });

  it('a plaintext login refused with 3159 reads as ON; over TLS the value and the release are read', async () => {
    const plain = await tidb('v8.5.1', false);
    const tls = await tidb('v8.5.1');
    cluster.on = true;
    expect(await readLiveRequire({ host: '127.0.0.1', port: plain }, { user: 'root', password: '' })).toEqual({ on: true });
    expect(await readLiveRequire({ host: '127.0.0.1', port: tls, tls: { ca: caPem, verify: true } }, { user: 'root', password: '' })).toEqual({ on: true, version: 'v8.5.1' });
    // ON without any TLS to turn it off from: disable says how instead of restarting into a lockout.
    await expect(sqlRequireOffStep.decide(context('off', [plain]))).rejects.toThrow(/require_secure_transport is ON but no TiDB offers TLS to turn it OFF from/);
  });
});
