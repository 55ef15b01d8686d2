/**
 * `tls rotate`'s verify step against loopback TLS servers that reload the way TiKV's ports do
 * (the lab emulators' ServerTls): the gRPC port on the next connection once the cert's mtime
 * moved, the status port only after a failed handshake (tikv src/server/status_server/mod.rs).
 */
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';
import * as tls from 'tls';
import { ReloadPolicy, ServerTls } from '../../../lab/emulators/common/tls';
import type { PdClient } from '../../../src/pd/client';
import { FakePool } from '../../../src/ssh';
import type { TlsContext } from '../../../src/tasks/context';
import { RotateState, verifyServedStep } from '../../../src/tasks/certs/rotate';
import { parseTopology } from '../../../src/topology';
import { Pki, tmpDir } from '../../emulators/helpers';
import { fakeTlsContext } from '../../support/tls-context';
import { privateLoopback } from '../../support/loopback';

jest.setTimeout(60000);

// The store's host: an address of this file's own, so a status port closed for a restart is still
// free when it listens again.
const HOST = privateLoopback();
let base: string;
let pki: Pki;
let client: { cert: string; key: string };
const servers: net.Server[] = [];

beforeAll(() => {
  base = tmpDir('rotate-reload');
  pki = new Pki(path.join(base, 'tls'));
  client = pki.issue('client', 'tiseal', []);
});

afterAll(() => {
  for (const s of servers) s.close();
  fs.rmSync(base, { recursive: true, force: true });
});

interface Store {
  files: { cert: string; key: string };
  grpc: number;
  status: number;
  /** Stop the status server and start it again on the same port (what `systemctl restart` does). */
  restart(): Promise<void>;
  statusServer: https.Server;
}

async function listen(s: net.Server, port = 0): Promise<number> {
  await new Promise<void>((r) => s.listen(port, HOST, r));
  servers.push(s);
  return (s.address() as net.AddressInfo).port;
}

/** A TiKV-like store on loopback: gRPC reloads on mtime, the status port by `statusPolicy`. */
async function store(name: string, statusPolicy: ReloadPolicy): Promise<Store> {
  const dir = path.join(base, name);
  fs.mkdirSync(dir, { recursive: true });
  const first = pki.issue(`${name}-1`, 'tikv', [HOST], '0x1001');
  const files = { cert: path.join(dir, 'tikv.crt'), key: path.join(dir, 'tikv.pem') };
  fs.copyFileSync(first.cert, files.cert);
  fs.copyFileSync(first.key, files.key);
  const paths = { ca: pki.ca, ...files };
  const grpcTls = new ServerTls({ paths, requireClientCert: true, reload: 'cert-mtime', reloadCA: true });
  const grpc = await listen(grpcTls.attach(tls.createServer(grpcTls.serverOptions(), (s) => s.end())));
  const startStatus = (): https.Server => {
    const st = new ServerTls({ paths, requireClientCert: false, reload: statusPolicy, reloadCA: true });
    return st.attach(https.createServer(st.serverOptions(), (_q, r) => r.end('ok')));
  };
  const s: Store = {
    files,
    grpc,
    status: 0,
    statusServer: startStatus(),
    async restart() {
      await new Promise<void>((r) => s.statusServer.close(() => r()));
      s.statusServer.closeAllConnections();
      s.statusServer = startStatus();
      await listen(s.statusServer, s.status);
    },
  };
  s.status = await listen(s.statusServer);
  return s;
}

function context(st: Store, pool: FakePool): TlsContext {
  const topology = parseTopology(
    `global:\n  user: tidb\npd_servers:\n  - host: 127.0.0.2\ntikv_servers:\n  - host: ${HOST}\n    port: ${st.grpc}\n    status_port: ${st.status}\n`,
    't.yaml',
  );
  const pd = { stores: async () => [{ id: '1', address: `${HOST}:${st.grpc}`, stateName: 'Up' }] } as unknown as PdClient;
  return fakeTlsContext({
    runId: 'r',
    topology,
    cluster: 't',
    opts: { concurrency: 2 },
    pool,
    pd,
    keepPd: undefined,
    removedPds: [],
    flags: { keyType: 'rsa' },
    clientTls: { ca: fs.readFileSync(pki.ca), cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key) },
  });
}

/** What `reissue` leaves behind: new key and certificate in place, the pushed serial recorded. */
function reissue(st: Store, ctx: TlsContext): RotateState {
  const next = pki.issue(`${path.basename(path.dirname(st.files.cert))}-2`, 'tikv', [HOST], '0x2002');
  fs.copyFileSync(next.key, st.files.key);
  fs.copyFileSync(next.cert, st.files.cert);
  const inst = ctx.topology.instances.find((i) => i.role === 'tikv')!;
  return { pushed: new Map([[`${inst.id}@${inst.host}`, '2002']]) };
}

async function runStep(ctx: TlsContext, state: RotateState, reloadWaitMs = 3000): Promise<{ titles: string[]; results: Array<void | string> }> {
  const step = verifyServedStep(state, { reloadWaitMs });
  const d = await step.decide(ctx);
  const results = [];
  for (const a of d.actions) results.push(await a.run());
  await step.verify!(ctx);
  return { titles: d.actions.map((a) => a.title), results };
}

describe('tls rotate: verify-served', () => {
  it("reloads TiKV's status port with one failed handshake and restarts nothing", async () => {
    const st = await store('kv-a', 'after-failed-handshake');
    const pool = new FakePool();
    const ctx = context(st, pool);
    const state = reissue(st, ctx);
    const { titles, results } = await runStep(ctx, state);
    // The gRPC port reloaded on the probe's own connection; only the status port needs the nudge.
    expect(titles).toEqual([
      `tikv-${st.grpc} on ${HOST}: make status_port ${st.status} reload with one deliberately failed TLS handshake (its status server reloads only then); restart tikv-${st.grpc}.service only if it still serves its old certificate`,
    ]);
    expect(results).toEqual([`port ${st.status} reloaded after a failed handshake; no restart`]);
    expect(ctx.notes.join('\n')).toMatch(/every port serves its new certificate; nothing restarted \(1 TiKV\/TiFlash status port\(s\) reloaded after a deliberately failed TLS handshake/);
    expect(pool.executors.size).toBe(0);
  });

  it('falls back to a restart when the port does not reload even after the failed handshake', async () => {
    const st = await store('kv-b', 'never');
    const pool = new FakePool();
    pool.host(HOST).onExec(/systemctl restart tikv-\d+\.service$/, async () => {
      await st.restart();
    });
    const ctx = context(st, pool);
    const state = reissue(st, ctx);
    const { results } = await runStep(ctx, state, 1500);
    expect(results).toEqual(['restarted']);
    expect(pool.host(HOST).commands().filter((c) => /systemctl restart/.test(c))).toHaveLength(1);
    expect(ctx.notes.join('\n')).toMatch(new RegExp(`tikv-${st.grpc} on ${HOST} needed a restart to serve its new certificate \\(port ${st.status} kept serial 1001\\)`));
    expect(ctx.notes.join('\n')).toMatch(/every port serves its new certificate; 1 instance\(s\) had to be restarted/);
  });

  it('a dry run (decide only) fails no handshake: its probes end the connection properly, so nothing reloads', async () => {
    const st = await store('kv-c', 'after-failed-handshake');
    const ctx = context(st, new FakePool());
    const state = reissue(st, ctx);
    await verifyServedStep(state, { reloadWaitMs: 1000 }).decide(ctx);
    // Let the server finish with decide's connections (TiKV handles handshakes one after another).
    await new Promise((r) => setTimeout(r, 300));
    // Still the old certificate: decide probed with completed handshakes only.
    const serial = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: HOST, port: st.status, rejectUnauthorized: false }, () => {
        resolve(s.getPeerX509Certificate()!.serialNumber.replace(/^0+/, ''));
        s.end();
      });
      s.on('error', reject);
    });
    expect(serial).toBe('1001');
  });
});
