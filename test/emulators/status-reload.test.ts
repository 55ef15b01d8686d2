/**
 * When TiKV's and the TiFlash proxy's status servers pick up a replaced certificate. Upstream
 * (tikv v6.5.0–v8.5.x src/server/status_server/mod.rs; pingcap/tidb-engine-ext
 * proxy_components/proxy_server/src/status_server/mod.rs is the same code):
 *
 *   let mut cert_last_modified_time = None;
 *   let mut handle_ssl_error = move |context: &mut SslContext| {
 *       match security_config.is_modified(&mut cert_last_modified_time) {
 *           Ok(true) => match tls_acceptor(&security_config) { Ok(acceptor) => { *context = acceptor.into_context(); } ... },
 *           Ok(false) => { // TLS certificate is not changed, do nothing }
 *   ...
 *   Ok(mut ssl_stream) => match Pin::new(&mut ssl_stream).accept().await {
 *       Err(_) => { error!("Status server error: TLS handshake error"); handle_ssl_error(&mut context); continue; },
 *       Ok(()) => { yield Ok(ssl_stream); },
 *
 * So only a FAILED handshake reloads, and only when the cert file's mtime differs from the one seen
 * at the last failure (none seen yet counts as changed). The gRPC port (components/security
 * src/lib.rs `Fetcher::fetch`, "Reload only when cert is modified") is asked on every new
 * connection instead.
 */
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';
import * as tls from 'tls';
import { ServerTls } from '../../lab/emulators/common/tls';
import { buildEmulators, curl, loopbackNet, Pki, startEmulator, startPd, startTikv, stopAll, tmpDir, waitFor, writeFile } from './helpers';

jest.setTimeout(120000);

const IP = loopbackNet(__filename);
let base: string;
let pki: Pki;
let client: { cert: string; key: string };

/** The serial a port serves, from a handshake we finish properly (end(), so the server's handshake completes too). */
function served(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host, port, ca: fs.readFileSync(pki.ca), cert: fs.readFileSync(client.cert), key: fs.readFileSync(client.key), rejectUnauthorized: false }, () => {
      const serial = s.getPeerX509Certificate()?.serialNumber ?? '';
      s.end();
      resolve(serial.replace(/^0+/, ''));
    });
    s.on('error', reject);
  });
}

/** A failed handshake: plaintext HTTP where the ClientHello belongs; resolves when the server has dropped us. */
function failHandshake(host: string, port: number, payload: string | null = 'GET / HTTP/1.0\r\n\r\n'): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port }, () => (payload === null ? s.end() : s.write(payload)));
    s.on('data', () => undefined);
    s.on('error', () => undefined);
    s.on('close', () => resolve());
  });
}

/** Re-issue into the same files, key first and certificate last (as tiseal does). */
function replace(files: { cert: string; key: string }, serial: string, keepMtime = false): void {
  const before = fs.statSync(files.cert);
  const next = pki.issue(`next-${serial}`, 'tikv', [IP(1), IP(2), IP(3)], `0x${serial}`);
  fs.copyFileSync(next.key, files.key);
  fs.copyFileSync(next.cert, files.cert);
  // Whole seconds only, so a kept mtime is restored exactly.
  const t = keepMtime ? before.mtime : new Date(Math.floor(before.mtimeMs / 1000) * 1000 + 1000);
  fs.utimesSync(files.cert, t, t);
}

function own(name: string): { cert: string; key: string } {
  const c = pki.issue(name, 'tikv', [IP(1), IP(2), IP(3)], '0x1001');
  const dir = path.join(base, name);
  fs.mkdirSync(dir, { recursive: true });
  const files = { cert: path.join(dir, 'tikv.crt'), key: path.join(dir, 'tikv.pem') };
  fs.copyFileSync(c.cert, files.cert);
  fs.copyFileSync(c.key, files.key);
  // A whole-second mtime, so `replace(.., keepMtime)` can restore it exactly.
  const t = new Date(Math.floor(Date.now() / 1000) * 1000 - 60000);
  fs.utimesSync(files.cert, t, t);
  return files;
}

async function statusServer(files: { cert: string; key: string }, requireClientCert: boolean): Promise<{ port: number; server: https.Server }> {
  const st = new ServerTls({ paths: { ca: pki.ca, ...files }, requireClientCert, reload: 'after-failed-handshake', reloadCA: true });
  const server = st.attach(https.createServer(st.serverOptions(), (_req, res) => res.end('ok')));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, server };
}

beforeAll(() => {
  base = tmpDir('status-reload');
  pki = new Pki(path.join(base, 'tls'));
  client = pki.issue('client', 'tiseal', []);
});

afterAll(async () => {
  await stopAll();
  fs.rmSync(base, { recursive: true, force: true });
});

describe('the status-server policy (ServerTls after-failed-handshake)', () => {
  it('keeps the old certificate through successful handshakes and reloads after a failed one', async () => {
    const files = own('a');
    const { port, server } = await statusServer(files, false);
    try {
      expect(await served('127.0.0.1', port)).toBe('1001');
      replace(files, '2002');
      for (let i = 0; i < 3; i++) expect(await served('127.0.0.1', port)).toBe('1001');
      await failHandshake('127.0.0.1', port);
      expect(await served('127.0.0.1', port)).toBe('2002');
      // New files but the same mtime: is_modified says no, the old certificate stays.
      replace(files, '3003', true);
      await failHandshake('127.0.0.1', port);
      expect(await served('127.0.0.1', port)).toBe('2002');
      fs.utimesSync(files.cert, new Date(), new Date(fs.statSync(files.cert).mtimeMs + 5000));
      await failHandshake('127.0.0.1', port);
      expect(await served('127.0.0.1', port)).toBe('3003');
      // A connection closed before any ClientHello is a failed handshake too (OpenSSL: unexpected EOF).
      replace(files, '4004');
      await failHandshake('127.0.0.1', port, null);
      expect(await served('127.0.0.1', port)).toBe('4004');
    } finally {
      server.close();
    }
  });

  it('with cert-allowed-cn (client certificate required), a client without one fails the handshake and triggers the reload', async () => {
    const files = own('b');
    const { port, server } = await statusServer(files, true);
    try {
      expect(await served('127.0.0.1', port)).toBe('1001');
      replace(files, '2002');
      expect(await served('127.0.0.1', port)).toBe('1001');
      // TLS 1.3: our side finishes first; the server then fails the handshake (no certificate) and drops us.
      await new Promise<void>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => undefined);
        s.on('data', () => undefined);
        s.on('error', () => undefined);
        s.on('close', () => resolve());
      });
      expect(await served('127.0.0.1', port)).toBe('2002');
    } finally {
      server.close();
    }
  });

  it('the first failure after start reloads even when the mtime did not move (cert_last_modified_time starts as None)', async () => {
    const files = own('c');
    const { port, server } = await statusServer(files, false);
    try {
      replace(files, '2002', true);
      expect(await served('127.0.0.1', port)).toBe('1001');
      await failHandshake('127.0.0.1', port);
      expect(await served('127.0.0.1', port)).toBe('2002');
    } finally {
      server.close();
    }
  });
});

describe('the TiKV and TiFlash emulators', () => {
  it('gRPC ports serve the new certificate on the next connection; status ports only after a failed handshake', async () => {
    const build = buildEmulators();
    const pd = pki.issue('pd', 'pd', [IP(1)]);
    startPd({ build, base, ip: IP }, 1, { scheme: 'https', dir: 'pd', toml: `[security]\ncacert-path = "${pki.ca}"\ncert-path = "${pd.cert}"\nkey-path = "${pd.key}"\n` });
    const mtls = { ca: pki.ca, ...client };
    await waitFor('PD up', () => curl(`https://${IP(1)}:2379/pd/api/v1/members`, mtls).http === 200 || undefined, 30000);

    const kv = own('tikv');
    startTikv({ build, base, ip: IP }, 2, { pd: `${IP(1)}:2379`, dir: 'tikv-proc', toml: `[security]\nca-path = "${pki.ca}"\ncert-path = "${kv.cert}"\nkey-path = "${kv.key}"\n` });

    const fl = own('tiflash');
    const flDir = path.join(base, 'tiflash-proc');
    writeFile(path.join(flDir, 'conf/tiflash-learner.toml'), `[security]\nca-path = "${pki.ca}"\ncert-path = "${fl.cert}"\nkey-path = "${fl.key}"\n`);
    writeFile(path.join(flDir, 'conf/tiflash.toml'), [
      `listen_host = "${IP(3)}"`, `tmp_path = "${flDir}/tmp"`, `path = "${flDir}/data"`,
      '[flash]', `service_addr = "${IP(3)}:3930"`,
      '[flash.proxy]', `addr = "${IP(3)}:20170"`, `advertise-addr = "${IP(3)}:20170"`, `status-addr = "${IP(3)}:20292"`,
      `config = "${flDir}/conf/tiflash-learner.toml"`, `data-dir = "${flDir}/data/flash"`,
      '[logger]', `log = "${flDir}/log/tiflash.log"`, '[raft]', `pd_addr = "${IP(1)}:2379"`,
      '[security]', `ca_path = "${pki.ca}"`, `cert_path = "${fl.cert}"`, `key_path = "${fl.key}"`,
    ].join('\n'));
    startEmulator(build, 'tiflash', ['server', '--config-file', 'conf/tiflash.toml'], { cwd: flDir });

    const status: Array<[string, number]> = [[IP(2), 20180], [IP(3), 20292]];
    const grpc: Array<[string, number]> = [[IP(2), 20160], [IP(3), 20170]];
    await waitFor('status ports up', async () => (await Promise.all(status.map(([h, p]) => served(h, p)))).every((s) => s === '1001') || undefined, 30000);
    replace(kv, '2002');
    replace(fl, '2002');
    for (const [h, p] of grpc) expect(`${h}:${p} ${await served(h, p)}`).toBe(`${h}:${p} 2002`);
    for (const [h, p] of status) for (let i = 0; i < 2; i++) expect(`${h}:${p} ${await served(h, p)}`).toBe(`${h}:${p} 1001`);
    for (const [h, p] of status) await failHandshake(h, p);
    for (const [h, p] of status) expect(`${h}:${p} ${await served(h, p)}`).toBe(`${h}:${p} 2002`);
    expect(fs.readFileSync(path.join(base, 'tikv-proc/log/tikv.log'), 'utf8')).toContain('Status server error: TLS handshake error');
  });
});
