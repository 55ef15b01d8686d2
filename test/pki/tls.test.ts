/**
 * Real mutual-TLS handshakes on loopback with the certificates we issue: a Node TLS server that
 * requires client certificates, and openssl s_client / Node tls as clients.
 */
import tls from 'tls';
import net from 'net';
import { CertificateAuthority, IssuedCert, KeyType, createCA, issueLeaf, importCA } from '../../src/pki';
import { TempDir, opensslAsync, opensslSelfSigned, opensslIntermediate } from './helpers';

interface Seen {
  authorized: boolean;
  clientCN?: string;
}

interface TestServer {
  port: number;
  host: string;
  seen: Seen[];
  clientErrors: string[];
  close: () => Promise<void>;
}

async function startServer(server: IssuedCert, host = '127.0.0.1'): Promise<TestServer> {
  const seen: Seen[] = [];
  const clientErrors: string[] = [];
  const sockets = new Set<net.Socket>();
  const srv = tls.createServer(
    { key: server.keyPem, cert: server.certPem, ca: server.caPem, requestCert: true, rejectUnauthorized: true },
    (sock) => {
      const cn = sock.getPeerCertificate().subject?.CN;
      seen.push({ authorized: sock.authorized, clientCN: typeof cn === 'string' ? cn : undefined });
      sock.end(`hello ${cn}\n`);
    },
  );
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  srv.on('tlsClientError', (e) => clientErrors.push(e.message));
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, () => resolve());
  });
  const port = (srv.address() as net.AddressInfo).port;
  return {
    port,
    host,
    seen,
    clientErrors,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        srv.close(() => resolve());
      }),
  };
}

function nodeClient(
  srv: TestServer,
  opts: { ca: string; client?: IssuedCert; servername?: string },
): Promise<{ authorized: boolean; data: string; serverCN: string }> {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({
      host: srv.host,
      port: srv.port,
      ca: opts.ca,
      cert: opts.client?.certPem,
      key: opts.client?.keyPem,
      servername: opts.servername,
      rejectUnauthorized: true,
    });
    let data = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => (data += d));
    sock.on('error', reject);
    sock.on('end', () => {
      const cn = sock.getPeerCertificate().subject?.CN;
      resolve({ authorized: sock.authorized, data, serverCN: String(cn) });
      sock.destroy();
    });
    sock.setTimeout(20_000, () => sock.destroy(new Error('timeout')));
  });
}

function sClient(srv: TestServer, t: TempDir, extra: string[]) {
  const target = net.isIPv6(srv.host) ? `[${srv.host}]:${srv.port}` : `${srv.host}:${srv.port}`;
  // -ign_eof: keep reading until the server closes, so its greeting (sent only after it accepted
  // our client certificate) is seen. -ignore_unexpected_eof: Node's TLS server closes without a
  // close_notify, which OpenSSL 3 would otherwise report as an error exit.
  return opensslAsync(['s_client', '-connect', target, '-verify_return_error', '-ign_eof', '-ignore_unexpected_eof', '-brief', ...extra], { cwd: t.dir, input: '' });
}

describe.each(['rsa', 'ecdsa'] as const)('mutual TLS with %s certificates', (keyType: KeyType) => {
  let t: TempDir;
  let ca: CertificateAuthority;
  let server: IssuedCert;
  let client: IssuedCert;
  let srv: TestServer;

  beforeAll(async () => {
    t = new TempDir('tiseal-tls-');
    ca = await createCA({ cluster: 'tls', keyType });
    server = await issueLeaf(ca, { commonName: 'pd', hosts: ['10.0.0.1', '::1'], keyType });
    client = await issueLeaf(ca, { commonName: 'tiseal-client', usage: 'client', keyType });
    t.write('ca.crt', server.caPem);
    t.write('client.crt', client.certPem);
    t.write('client.key', client.keyPem);
    srv = await startServer(server);
  });
  afterAll(async () => {
    await srv?.close();
    t?.remove();
  });

  it('openssl s_client verifies the server (CA, hostname localhost) and is accepted with its client cert', async () => {
    const r = await sClient(srv, t, ['-CAfile', 'ca.crt', '-cert', 'client.crt', '-key', 'client.key', '-servername', 'localhost', '-verify_hostname', 'localhost']);
    expect(r.stderr).toMatch(/Verification: OK/);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hello tiseal-client');
    expect(srv.seen.at(-1)).toEqual({ authorized: true, clientCN: 'tiseal-client' });
    // the hostname check is real: a name outside the SANs fails
    const wrongName = await sClient(srv, t, ['-CAfile', 'ca.crt', '-cert', 'client.crt', '-key', 'client.key', '-verify_hostname', 'not-in-cert.example']);
    expect(wrongName.code).not.toBe(0);
    expect(wrongName.stderr).toMatch(/hostname mismatch/);
  });

  it('openssl s_client also verifies the 127.0.0.1 IP SAN', async () => {
    const r = await sClient(srv, t, ['-CAfile', 'ca.crt', '-cert', 'client.crt', '-key', 'client.key', '-verify_ip', '127.0.0.1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('hello tiseal-client');
  });

  it('openssl s_client fails against a CA that did not issue the server certificate', async () => {
    const other = await createCA({ cluster: 'tls', keyType }); // same name, other key
    t.write('other-ca.crt', other.bundlePem);
    const r = await sClient(srv, t, ['-CAfile', 'other-ca.crt', '-cert', 'client.crt', '-key', 'client.key', '-servername', 'localhost']);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('hello');
  });

  it('the server rejects a client without a certificate', async () => {
    const before = srv.seen.length;
    const r = await sClient(srv, t, ['-CAfile', 'ca.crt', '-servername', 'localhost']);
    expect(r.stdout).not.toContain('hello');
    expect(srv.seen.length).toBe(before);
    expect(srv.clientErrors.join('\n')).toMatch(/certificate/i);
  });

  it('Node tls client: mutual TLS by server name and by IP SAN', async () => {
    const byName = await nodeClient(srv, { ca: server.caPem, client, servername: 'localhost' });
    expect(byName).toEqual({ authorized: true, data: 'hello tiseal-client\n', serverCN: 'pd' });
    const byIp = await nodeClient(srv, { ca: server.caPem, client }); // checks 127.0.0.1 against the IP SANs
    expect(byIp.authorized).toBe(true);
    await expect(nodeClient(srv, { ca: server.caPem, client, servername: 'not-in-the-cert.example' })).rejects.toThrow(/altnames|Hostname/i);
  });

  it('IPv6 loopback: the ::1 IP SAN verifies', async () => {
    const v6 = await startServer(server, '::1');
    try {
      const r = await nodeClient(v6, { ca: server.caPem, client });
      expect(r.data).toBe('hello tiseal-client\n');
      const o = await sClient(v6, t, ['-CAfile', 'ca.crt', '-cert', 'client.crt', '-key', 'client.key', '-verify_ip', '::1']);
      expect(o.code).toBe(0);
      expect(o.stdout).toContain('hello tiseal-client');
    } finally {
      await v6.close();
    }
  });
});

describe('mutual TLS through an imported intermediate CA', () => {
  let t: TempDir;
  beforeAll(() => {
    t = new TempDir('tiseal-tls-int-');
  });
  afterAll(() => t.remove());

  it('works when hosts trust the bundle (intermediate + root) as ca.crt', async () => {
    const root = opensslSelfSigned(t, 'root', 'Corp Root', { key: 'ec' });
    const inter = opensslIntermediate(t, 'inter', 'Corp Issuing', 'root');
    const ca = importCA({ certPem: inter.cert, keyPem: inter.key, chainPem: root.cert });
    const server = await issueLeaf(ca, { commonName: 'tikv', hosts: ['10.0.0.5'], days: 20, keyType: 'ecdsa' });
    const client = await issueLeaf(ca, { commonName: 'tiseal-client', usage: 'client', days: 20 });
    t.write('bundle.crt', server.caPem);
    t.write('client.crt', client.certPem);
    t.write('client.key', client.keyPem);
    const srv = await startServer(server);
    try {
      const r = await sClient(srv, t, ['-CAfile', 'bundle.crt', '-cert', 'client.crt', '-key', 'client.key', '-servername', 'localhost', '-verify_hostname', 'localhost']);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('hello tiseal-client');
      const n = await nodeClient(srv, { ca: client.caPem, client, servername: 'localhost' });
      expect(n).toEqual({ authorized: true, data: 'hello tiseal-client\n', serverCN: 'tikv' });
    } finally {
      await srv.close();
    }
  });

  it('a server sending its full chain verifies for a client that trusts only the root', async () => {
    const root = opensslSelfSigned(t, 'root2', 'Corp Root 2');
    const inter = opensslIntermediate(t, 'inter2', 'Corp Issuing 2', 'root2');
    const ca = importCA({ certPem: inter.cert, keyPem: inter.key, chainPem: root.cert });
    const server = await issueLeaf(ca, { commonName: 'pd', hosts: ['127.0.0.1'], days: 20 });
    const client = await issueLeaf(ca, { commonName: 'tiseal', usage: 'client', days: 20 });
    t.write('client2.crt', client.fullChainPem);
    t.write('client2.key', client.keyPem);
    for (const [certPem, verifies] of [
      [server.fullChainPem, true],
      [server.certPem, false],
    ] as const) {
      // Trusting only the root for client certificates keeps OpenSSL from completing the served
      // chain from its own store (Node/OpenSSL servers do; Go's crypto/tls, as in PD and TiDB, does not).
      const srv = await startServer({ ...server, certPem, caPem: root.cert });
      try {
        const r = await sClient(srv, t, ['-CAfile', 'root2.crt', '-cert', 'client2.crt', '-key', 'client2.key', '-verify_return_error']);
        expect(`${r.code === 0}`).toBe(`${verifies}`);
      } finally {
        await srv.close();
      }
    }
  });
});
