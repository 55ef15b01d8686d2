import * as fs from 'fs';
import * as https from 'https';
import type { AddressInfo } from 'net';
import * as path from 'path';
import { httpRequest } from '../../lab/emulators/common/http';
import { pdClientTlsOptions } from '../../lab/emulators/common/tls';
import { Pki, tmpDir } from './helpers';

// Outgoing CN checks of the emulators' Go clients.
// tikv/pd v8.1.0 pkg/utils/grpcutil/grpcutil.go ToTLSInfo: `AllowedCN: allowedCN` (GetOneAllowedCN)
// and ToTLSConfig → tlsInfo.ClientConfig(); etcd pkg/transport/listener.go baseConfig (server AND
// client): `if info.AllowedCN == chains[0].Subject.CommonName { return nil } … return
// errors.New("CommonName authentication failed")`. So PD < v8.4 with cert-allowed-cn = ["pd"]
// cannot call a TiKV/TiDB/TiFlash whose certificate says CN=tikv/tidb/tiflash.
let base: string;
let pki: Pki;
let server: https.Server;
let url: string;

beforeAll(async () => {
  base = tmpDir('client-cn');
  pki = new Pki(path.join(base, 'tls'));
  const tikv = pki.issue('tikv', 'tikv', []);
  const pd = pki.issue('pd', 'pd', []);
  fs.writeFileSync(path.join(base, 'pd-paths.json'), JSON.stringify(pd));
  server = https.createServer({ cert: fs.readFileSync(tikv.cert), key: fs.readFileSync(tikv.key), ca: fs.readFileSync(pki.ca), requestCert: true }, (_q, r) => r.end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/status`;
});

afterAll(() => {
  server.close();
  fs.rmSync(base, { recursive: true, force: true });
});

const pdPaths = () => ({ ca: pki.ca, ...(JSON.parse(fs.readFileSync(path.join(base, 'pd-paths.json'), 'utf8')) as { cert: string; key: string }) });

test('PD with one allowed CN fails its own call to a TiKV with another CN, as etcd TLSInfo does', async () => {
  await expect(httpRequest(url, { tls: pdClientTlsOptions(pdPaths(), ['pd']), timeoutMs: 3000 })).rejects.toThrow('CommonName authentication failed');
});

test('the call passes when the server CN is listed, or when PD has no allow-list', async () => {
  expect((await httpRequest(url, { tls: pdClientTlsOptions(pdPaths(), ['pd', 'tikv']), timeoutMs: 3000 })).status).toBe(200);
  expect((await httpRequest(url, { tls: pdClientTlsOptions(pdPaths(), []), timeoutMs: 3000 })).status).toBe(200);
});
