import * as fs from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as os from 'os';
import * as path from 'path';
import type { AddressInfo } from 'net';
import { probeOnce, type ProberConfig } from '../../bench/prober';
import { createCA, issueLeaf } from '../../src/pki';

/** PD's etcd JSON gateway (/v3/kv/put, /v3/kv/range) and TiDB's /status, enough for the prober. */
function handler(kv: Map<string, string>, opts: { corrupt?: boolean } = {}) {
  return (req: http.IncomingMessage, res: http.ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.url === '/status') return res.end('{"connections":0}');
      const msg = body ? JSON.parse(body) : {};
      if (req.url === '/v3/kv/put') {
        kv.set(msg.key, msg.value);
        return res.end('{}');
      }
      if (req.url === '/v3/kv/range') {
        const v = opts.corrupt ? Buffer.from('other').toString('base64') : kv.get(msg.key);
        return res.end(JSON.stringify(v ? { kvs: [{ key: msg.key, value: v }] } : {}));
      }
      res.statusCode = 404;
      res.end();
    });
  };
}

const listen = (s: http.Server, port = 0) => new Promise<number>((r) => s.listen(port, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
const close = (s: http.Server) => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r())));

describe('the outage prober', () => {
  let dir: string;
  let cfg: ProberConfig;
  let serverTls: { ca: string; cert: string; key: string };
  const fresh = () => ({ pdScheme: { scheme: 'http' as const }, tidbScheme: { scheme: 'http' as const }, pdLast: { i: 0 }, tidbLast: { i: 0 }, n: 0 });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-prober-'));
    const ca = await createCA({ cluster: 'prober', keyType: 'ecdsa' });
    const server = await issueLeaf(ca, { commonName: 'pd', hosts: ['127.0.0.1'], keyType: 'ecdsa' });
    const client = await issueLeaf(ca, { commonName: 'tiseal', usage: 'client', keyType: 'ecdsa' });
    serverTls = { ca: ca.bundlePem, cert: server.certPem, key: server.keyPem };
    // The client files appear only when the cluster goes TLS (as tiseal writes them mid-run).
    cfg = { pd: [], tidbStatus: [], tls: { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'client.crt'), key: path.join(dir, 'client.key') }, intervalMs: 100, timeoutMs: 500 };
    fs.writeFileSync(cfg.tls.ca, ca.bundlePem);
    fs.writeFileSync(path.join(dir, 'client.pending'), client.certPem);
    fs.writeFileSync(cfg.tls.key, client.keyPem);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('answers over plaintext, then follows the cluster to mutual TLS on the same port', async () => {
    const kv = new Map<string, string>();
    const plain = http.createServer(handler(kv));
    const port = await listen(plain);
    const c = { ...cfg, pd: [`127.0.0.1:${port}`], tidbStatus: [`127.0.0.1:${port}`] };
    const state = fresh();
    const t1 = await probeOnce(c, state);
    expect(t1).toMatchObject({ ok: true, pd: true, tidb: true });
    expect(kv.size).toBe(1);
    await close(plain);

    const down = await probeOnce(c, state);
    expect(down).toMatchObject({ ok: false, pd: false, tidb: false });
    expect(down.error).toMatch(/pd: .*ECONNREFUSED.*; tidb: /);

    fs.copyFileSync(path.join(dir, 'client.pending'), cfg.tls.cert);
    const secure = https.createServer({ ...serverTls, requestCert: true, rejectUnauthorized: true }, handler(kv));
    await listen(secure, port);
    try {
      const t2 = await probeOnce(c, state);
      expect(t2).toMatchObject({ ok: true, pd: true, tidb: true });
      expect(state.pdScheme.scheme).toBe('https');
      expect(state.tidbScheme.scheme).toBe('https');
    } finally {
      await close(secure);
      fs.rmSync(cfg.tls.cert);
    }
  });

  it('counts a write it cannot read back as unanswered, and tries the next PD', async () => {
    const bad = http.createServer(handler(new Map(), { corrupt: true }));
    const good = http.createServer(handler(new Map()));
    const [pb, pg] = [await listen(bad), await listen(good)];
    try {
      const state = fresh();
      const onlyBad = await probeOnce({ ...cfg, pd: [`127.0.0.1:${pb}`], tidbStatus: [`127.0.0.1:${pg}`] }, state);
      expect(onlyBad).toMatchObject({ ok: false, pd: false, tidb: true });
      expect(onlyBad.error).toMatch(/read back/);
      const both = await probeOnce({ ...cfg, pd: [`127.0.0.1:${pb}`, `127.0.0.1:${pg}`], tidbStatus: [`127.0.0.1:${pg}`] }, state);
      expect(both.ok).toBe(true);
      expect(state.pdLast.i).toBe(1); // the PD that answered is asked first next time
    } finally {
      await close(bad);
      await close(good);
    }
  });
});
