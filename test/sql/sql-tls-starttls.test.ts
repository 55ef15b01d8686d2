/**
 * probeMysqlTls against a minimal MySQL greeter (test equipment): the greeting, CLIENT_SSL or not,
 * then a TLS server on the same socket after the 36-byte SSLRequest, as TiDB does.
 */
import * as net from 'net';
import * as stream from 'stream';
import * as tls from 'tls';
import { createCA, issueLeaf } from '../../src/pki';
import { acceptedTlsVersions, parseGreeting, probeMysqlTls, sslRequestPacket } from '../../src/sql/starttls';

jest.setTimeout(60_000);

function greeting(ssl: boolean): Buffer {
  const caps = 0x200 | 0x8000 | 0x1 | (ssl ? 0x800 : 0);
  const body = Buffer.concat([Buffer.from([10]), Buffer.from('8.0.11-TiDB-v8.5.1\0'), Buffer.alloc(4, 1), Buffer.alloc(8, 2), Buffer.from([0]), Buffer.from([caps & 0xff, caps >> 8]), Buffer.from([45, 2, 0]), Buffer.from([0, 0]), Buffer.alloc(11)]);
  return Buffer.concat([Buffer.from([body.length & 0xff, body.length >> 8, 0, 0]), body]);
}

function greeter(secure?: tls.SecureContextOptions, host = '127.0.0.1'): Promise<{ port: number; sslRequests: Buffer[]; close: () => void }> {
  const sslRequests: Buffer[] = [];
  const server = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.write(greeting(Boolean(secure)));
    if (!secure) return;
    sock.once('data', (d: Buffer) => {
      sslRequests.push(d.subarray(0, 36));
      // The ClientHello may come in the same segment as the SSLRequest (TiDB's buffered reader keeps
      // it too): feed the TLS server through a JS stream that starts with what is left.
      const wire = new stream.Duplex({ read: () => undefined, write: (c, _e, cb) => sock.write(c, cb) });
      if (d.length > 36) wire.push(d.subarray(36));
      sock.on('data', (c) => wire.push(c));
      sock.on('close', () => wire.push(null));
      const t = new tls.TLSSocket(wire, { isServer: true, secureContext: tls.createSecureContext(secure) });
      t.on('error', () => undefined);
    });
  });
  return new Promise((resolve) => server.listen(0, host, () => resolve({ port: (server.address() as net.AddressInfo).port, sslRequests, close: () => server.close() })));
}

describe('probeMysqlTls (STARTTLS for MySQL)', () => {
  it('sends a 32-byte SSLRequest with CLIENT_SSL, sequence id 1', () => {
    const p = sslRequestPacket();
    expect([p.length, p[3], p.readUInt32LE(4) & 0x800]).toEqual([36, 1, 0x800]);
    expect(parseGreeting(greeting(false).subarray(4))).toEqual({ serverVersion: '8.0.11-TiDB-v8.5.1', capabilities: 0x200 | 0x8000 | 0x1 });
  });

  it('reports plain when CLIENT_SSL is not offered', async () => {
    const g = await greeter();
    try {
      expect(await probeMysqlTls('127.0.0.1', g.port)).toEqual({ kind: 'plain', serverVersion: '8.0.11-TiDB-v8.5.1' });
    } finally {
      g.close();
    }
  });

  it('upgrades, returns the served certificate, and verifies chain and host against the CA', async () => {
    const ca = await createCA({ cluster: 't', keyType: 'ecdsa' });
    const other = await createCA({ cluster: 'other', keyType: 'ecdsa' });
    const good = await issueLeaf(ca, { commonName: 'tidb', hosts: ['127.0.0.1'], keyType: 'ecdsa' });
    const g = await greeter({ cert: good.certPem, key: good.keyPem });
    try {
      const r = await probeMysqlTls('127.0.0.1', g.port, { ca: ca.bundlePem });
      expect(r).toMatchObject({ kind: 'tls', authorized: true, chainVerified: true });
      expect(r.peer?.serialHex).toBe(new (require('crypto').X509Certificate)(good.certPem).serialNumber.toLowerCase());
      expect(g.sslRequests[0].readUInt32LE(4) & 0x800).toBe(0x800);
      expect(await probeMysqlTls('127.0.0.1', g.port, { ca: other.bundlePem })).toMatchObject({ kind: 'tls', authorized: false, chainVerified: false });
    } finally {
      g.close();
    }
    const wrongHost = await issueLeaf(ca, { commonName: 'tidb', hosts: ['10.0.0.9'], keyType: 'ecdsa' });
    // Server leaves also name localhost and 127.0.0.1: dial another loopback address they do not name.
    const h = await greeter({ cert: wrongHost.certPem, key: wrongHost.keyPem }, '127.0.0.2');
    try {
      expect(await probeMysqlTls('127.0.0.2', h.port, { ca: ca.bundlePem })).toMatchObject({ kind: 'tls', authorized: false, chainVerified: true });
    } finally {
      h.close();
    }
  });

  it('tells which TLS versions a port accepts, TLS 1.0 included (what the audit flags)', async () => {
    const ca = await createCA({ cluster: 't', keyType: 'rsa' });
    const leaf = await issueLeaf(ca, { commonName: 'tidb', hosts: ['127.0.0.1'], keyType: 'rsa' });
    const lax = await greeter({ cert: leaf.certPem, key: leaf.keyPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.2', ciphers: 'DEFAULT:@SECLEVEL=0' });
    const strict = await greeter({ cert: leaf.certPem, key: leaf.keyPem, minVersion: 'TLSv1.3' });
    try {
      expect(await acceptedTlsVersions('127.0.0.1', lax.port)).toEqual({ TLSv1: true, 'TLSv1.1': true, 'TLSv1.2': true, 'TLSv1.3': false });
      expect(await acceptedTlsVersions('127.0.0.1', strict.port)).toEqual({ TLSv1: false, 'TLSv1.1': false, 'TLSv1.2': false, 'TLSv1.3': true });
    } finally {
      lax.close();
      strict.close();
    }
  });

  it('reports closed when nothing listens', async () => {
    const g = await greeter();
    g.close();
    await new Promise((r) => setTimeout(r, 50));
    expect((await probeMysqlTls('127.0.0.1', g.port)).kind).toBe('closed');
  });
});
