/**
 * PdClient's scheme fallback ends once the cluster is recorded as TLS: a plaintext server on PD's
 * port (a spoofer, or a PD someone turned back to http) is never asked.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { recordedTls } from '../../src/commands/cluster';
import { PdClient } from '../../src/pd/client';
import { ClusterDir } from '../../src/state/cluster-dir';
import { writeMeta } from '../../src/state/meta';

let dir: string;
let ca: string;
let spoofer: http.Server;
let port: number;
let hits = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-pd-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k.pem'), '-out', path.join(dir, 'ca.pem'), '-days', '1', '-subj', '/CN=test-ca'], { stdio: 'ignore' });
  ca = fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8');
  spoofer = http.createServer((req, res) => {
    hits++;
    res.end(JSON.stringify({ 'max-replicas': 3 }));
  });
  await new Promise<void>((r) => spoofer.listen(0, '127.0.0.1', () => r()));
  port = (spoofer.address() as { port: number }).port;
});
afterAll(() => {
  spoofer.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('during a switch (default) https is tried first, then http answers', async () => {
  hits = 0;
  const pd = new PdClient([`127.0.0.1:${port}`], { ca });
  const res = await pd.call('GET', '/pd/api/v1/config/replicate');
  expect(JSON.parse(res.body)['max-replicas']).toBe(3);
  expect(pd.scheme).toBe('http');
  expect(hits).toBe(1);
});

test('tlsOnly: the plaintext server is never asked, and the error says why', async () => {
  hits = 0;
  const pd = new PdClient([`127.0.0.1:${port}`], { ca }, { prefer: 'http', tlsOnly: 'meta.json records TLS' });
  const err = await pd.call('GET', '/pd/api/v1/config/replicate').catch((e) => e);
  expect(err.message).toContain('PD is not reachable over https (meta.json records TLS: plaintext is not tried)');
  expect(err.suggestion).toContain('tiseal tls disable');
  expect(hits).toBe(0);
  // requireTls on a client that fell back before: no http any more either.
  const switching = new PdClient([`127.0.0.1:${port}`], { ca });
  await switching.call('GET', '/x');
  expect(hits).toBe(1);
  switching.requireTls('recorded');
  await expect(switching.call('GET', '/x')).rejects.toThrow(/over https/);
  expect(hits).toBe(1);
});

test('tlsOnly without client TLS material fails before any request, naming the reason', async () => {
  hits = 0;
  const pd = new PdClient([`127.0.0.1:${port}`], undefined, { tlsOnly: 'meta.json records TLS' });
  await expect(pd.call('GET', '/x')).rejects.toThrow(`PD 127.0.0.1:${port}: meta.json records TLS, but there is no client certificate to call PD over https (plaintext is not tried)`);
  expect(hits).toBe(0);
});

test('recordedTls: meta.json enable_tls makes PD calls TLS-only', () => {
  const cluster = new ClusterDir(dir, 'c1');
  cluster.ensure();
  expect(recordedTls(cluster)).toBeUndefined();
  writeMeta(cluster.metaFile, { enableTls: false });
  expect(recordedTls(cluster)).toBeUndefined();
  writeMeta(cluster.metaFile, { enableTls: true });
  expect(recordedTls(cluster)).toContain(`${cluster.metaFile} records the cluster as TLS`);
});
