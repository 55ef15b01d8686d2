/**
 * The PD emulator's etcd child is given its client port on the command line (its JSON gateway
 * dials the listen address as written: port 0 does not work). A port picked free can be bound by
 * another process before etcd binds it: that etcd is started again on another port, and the one
 * that took the port (here: a fake etcd answering /v3/maintenance/status) is never talked to.
 */
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import type { Logger } from '../../lab/emulators/common/log';
import type { PdConfig } from '../../lab/emulators/pd/config';
import { EtcdProcess, freePort, loopbackListenPorts } from '../../lab/emulators/pd/etcd';
import { tmpDir } from './helpers';

jest.setTimeout(60000);

const etcdBin = process.env.TISEAL_ETCD_BIN || '/usr/bin/etcd';
const maybe = fs.existsSync(etcdBin) ? test : test.skip;

test('loopbackListenPorts lists the 127.0.0.1 ports this process listens on, not others', async () => {
  const mine = net.createServer();
  await new Promise<void>((r) => mine.listen(0, '127.0.0.1', () => r()));
  const elsewhere = net.createServer();
  await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.2', () => r()));
  try {
    const ports = loopbackListenPorts(process.pid);
    expect(ports).toContain((mine.address() as net.AddressInfo).port);
    expect(ports).not.toContain((elsewhere.address() as net.AddressInfo).port);
  } finally {
    mine.close();
    elsewhere.close();
  }
});

maybe('a client port taken before etcd binds it: etcd starts on another one, the squatter is never asked', async () => {
  const base = tmpDir('etcd-port');
  let asked = 0;
  // Answers like etcd's gateway: had the emulator trusted "something answers", it would have used it.
  const squatter = http.createServer((_q, r) => {
    asked++;
    r.end(JSON.stringify({ header: { member_id: '1', cluster_id: '1' }, leader: '1' }));
  });
  await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', () => r()));
  const taken = (squatter.address() as net.AddressInfo).port;
  const picks = [taken];
  const warnings: string[] = [];
  const log = { info: () => undefined, raw: () => undefined, warn: (m: string) => warnings.push(m) } as unknown as Logger;
  const peer = `http://127.0.0.1:${await freePort()}`;
  const cfg = { name: 'pd-1', dataDir: path.join(base, 'data'), advertiseClientUrls: ['http://127.0.0.1:2379'], peerUrls: [peer], advertisePeerUrls: [peer], security: {} } as unknown as PdConfig;
  const etcd = new EtcdProcess();
  try {
    await etcd.start({ cfg, initialCluster: `pd-1=${peer}`, initialClusterState: 'new', log, pickPort: async () => picks.shift() ?? freePort() });
    const port = Number(new URL(etcd.clientUrl).port);
    expect(port).not.toBe(taken);
    expect(warnings).toEqual(['embedded etcd lost its client port to another process, trying another']);
    expect(asked).toBe(0);
    expect((await etcd.gateway.status()).memberId).not.toBe(1n);
  } finally {
    await etcd.stop();
    squatter.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
});
