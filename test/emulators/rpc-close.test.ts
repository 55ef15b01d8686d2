/**
 * The emulators' gRPC stand-in (TiKV 20160, TiFlash 3930/20170) closes a connection once it has
 * answered, as real TiKV does with any non-gRPC client: grpc src/core/ext/transport/chttp2/transport/parsing.cc
 * fails the transport at the first byte that is not the HTTP/2 preface ("Connect string mismatch:
 * expected 'P' (80) got 'p' (112) at byte 0"). A server that kept the socket open made every
 * `openssl s_client -quiet` probe of the lab (which ignores stdin EOF) wait out its timeout.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import * as tls from 'tls';
import { Logger } from '../../lab/emulators/common/log';
import { createRpcServer } from '../../lab/emulators/common/rpc-server';
import { ServerTls } from '../../lab/emulators/common/tls';
import { Pki, tmpDir } from './helpers';

jest.setTimeout(60_000);

let pki: Pki;
let server: net.Server;
let port: number;
const certs: Record<string, { cert: string; key: string }> = {};

beforeAll(async () => {
  pki = new Pki(path.join(tmpDir('rpc-close'), 'tls'));
  const srv = pki.issue('tikv', 'tikv', ['127.0.0.1']);
  certs.tidb = pki.issue('tidb', 'tidb', []);
  certs.intruder = pki.issue('intruder', 'intruder', []);
  const log = new Logger('tikv');
  const serverTls = new ServerTls({ paths: { ca: pki.ca, cert: srv.cert, key: srv.key }, requireClientCert: true, reload: 'cert-mtime', reloadCA: true }, log);
  server = createRpcServer({ component: 'tikv', version: '8.1.0', tls: serverTls, allowedCN: ['tidb'], log });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});

// Every connection was closed by the server: close() would otherwise wait for them.
afterAll(async () => {
  const count = () => new Promise<number>((r) => server.getConnections((_e, n) => r(n)));
  let open = await count();
  for (let i = 0; i < 20 && open > 0; i++) open = await new Promise((r) => setTimeout(r, 100)).then(count);
  server.close();
  expect(`open connections after the tests: ${open}`).toBe('open connections after the tests: 0');
});

/**
 * What test/lab/expect-cluster.ts tlsSay runs (-quiet implies -ign_eof: only the server can end
 * it), asynchronously since the server lives in this process; killed after 5 s.
 */
function say(client?: { cert: string; key: string }): Promise<{ out: string; killed: boolean }> {
  const auth = client ? ['-cert', client.cert, '-key', client.key] : [];
  const c = spawn('openssl', ['s_client', '-quiet', '-connect', `127.0.0.1:${port}`, '-verify_return_error', '-CAfile', pki.ca, ...auth, '-ignore_unexpected_eof']);
  let out = '';
  c.stdout.on('data', (d: Buffer) => (out += d.toString()));
  c.stderr.on('data', (d: Buffer) => (out += d.toString()));
  c.stdin.end('ping\n');
  const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
  return new Promise((resolve) =>
    c.on('close', (_code, signal) => {
      clearTimeout(timer);
      resolve({ out, killed: signal !== null });
    }),
  );
}

test('an accepted client gets its answer and the connection closes (no client-side timeout)', async () => {
  const r = await say(certs.tidb);
  expect(r.out).toMatch(/^pong tikv 8\.1\.0$/m);
  expect(`killed by the timeout: ${r.killed}`).toBe('killed by the timeout: false');
});

test('a refused client is told so and closed at once: foreign CN, no certificate', async () => {
  const cn = await say(certs.intruder);
  expect(cn.out).toMatch(/Common name check fail/);
  expect(cn.killed).toBe(false);
  const bare = await say();
  expect(bare.out).not.toMatch(/pong/);
  expect(bare.out).toMatch(/alert certificate required/);
  expect(bare.killed).toBe(false);
});

test('a second line on the same connection gets no second answer', async () => {
  const got = await new Promise<string>((resolve, reject) => {
    const read = (f: string) => fs.readFileSync(f);
    const s = tls.connect({ host: '127.0.0.1', port, ca: read(pki.ca), cert: read(certs.tidb.cert), key: read(certs.tidb.key), ALPNProtocols: ['h2'] });
    let buf = '';
    s.setEncoding('utf8');
    s.once('secureConnect', () => s.write('ping\nping\n'));
    s.on('data', (d: string) => (buf += d));
    s.on('end', () => resolve(buf));
    s.on('error', reject);
  });
  expect(got).toBe('pong tikv 8.1.0\n');
});
