/**
 * TiKV's status port (and the TiFlash proxy's) speaks TLS as rust-openssl's
 * `SslAcceptor::mozilla_modern` sets it up (openssl/src/ssl/connector.rs: NO_TLSV1 | NO_TLSV1_1 |
 * NO_TLSV1_3, ECDHE suites only; tikv src/server/status_server/mod.rs tls_acceptor): TLS 1.2 and
 * nothing else — also after a reload, which builds a new acceptor the same way.
 */
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';
import * as tls from 'tls';
import { ServerTls } from '../../lab/emulators/common/tls';
import { openssl, Pki, tmpDir } from './helpers';

let base: string;
let pki: Pki;
let rsa: { cert: string; key: string };
const servers: net.Server[] = [];

beforeAll(() => {
  base = tmpDir('status-tls');
  pki = new Pki(path.join(base, 'tls'));
  // An RSA leaf: with RSA, OpenSSL could also agree on a suite without ECDHE (RSA key exchange).
  rsa = { cert: path.join(base, 'tikv.crt'), key: path.join(base, 'tikv.pem') };
  fs.writeFileSync(path.join(base, 'ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', rsa.key, '-out', path.join(base, 'tikv.csr'), '-subj', '/CN=tikv']);
  openssl(['x509', '-req', '-in', path.join(base, 'tikv.csr'), '-CA', pki.ca, '-CAkey', path.join(pki.dir, 'ca.pem'), '-out', rsa.cert, '-days', '2', '-extfile', path.join(base, 'ext'), '-CAcreateserial']);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  fs.rmSync(base, { recursive: true, force: true });
});

async function statusPort(mozillaModern: boolean): Promise<{ port: number; tls: ServerTls }> {
  const st = new ServerTls({ paths: { ca: pki.ca, cert: rsa.cert, key: rsa.key }, requireClientCert: false, reload: 'after-failed-handshake', reloadCA: true, mozillaModern });
  const server = st.attach(https.createServer(st.serverOptions(), (_q, res) => res.end('ok')));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, tls: st };
}

/** The protocol and cipher the handshake agreed on, or the error that ended it. */
function hello(port: number, o: tls.ConnectionOptions = {}): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(pki.ca), ...o }, () => {
      const r = `${s.getProtocol()} ${s.getCipher().standardName}`;
      s.end();
      resolve(r);
    });
    s.on('error', (e) => resolve(`error: ${e.message}`));
  });
}

test('TLS 1.2 with ECDHE only; a TLS 1.3-only client and an RSA-key-exchange-only client are refused', async () => {
  const { port } = await statusPort(true);
  expect(await hello(port)).toMatch(/^TLSv1\.2 TLS_ECDHE_RSA_WITH_/);
  expect(await hello(port, { minVersion: 'TLSv1.3' })).toMatch(/^error: /);
  expect(await hello(port, { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' })).toMatch(/^error: /);
  expect(await hello(port, { maxVersion: 'TLSv1.1', minVersion: 'TLSv1' })).toMatch(/^error: /);
});

test('the same after a reload (a failed handshake with a changed certificate builds the acceptor again)', async () => {
  const { port } = await statusPort(true);
  const t = new Date(Date.now() + 5000);
  fs.utimesSync(rsa.cert, t, t); // "changed": a new mtime
  await new Promise<void>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write('GET / HTTP/1.0\r\n\r\n'));
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => resolve());
  });
  expect(await hello(port)).toMatch(/^TLSv1\.2 TLS_ECDHE_/);
  expect(await hello(port, { minVersion: 'TLSv1.3' })).toMatch(/^error: /);
});

test('control: without the profile the same server agrees on TLS 1.3 and on RSA key exchange', async () => {
  const { port } = await statusPort(false);
  expect(await hello(port)).toMatch(/^TLSv1\.3 /);
  expect(await hello(port, { maxVersion: 'TLSv1.2', ciphers: 'AES128-GCM-SHA256' })).toBe('TLSv1.2 TLS_RSA_WITH_AES_128_GCM_SHA256');
});
