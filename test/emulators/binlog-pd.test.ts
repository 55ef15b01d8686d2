/**
 * Pump's and Drainer's way to PD in the emulators (lab/emulators/binlog/node.ts) asks every PD of
 * its list, as upstream does: PD's Go client looks for the cluster id member by member (tikv/pd
 * client/base_client.go initClusterID: `for _, u := range c.urls`), follows the leader for
 * TSOs, and clientv3 balances the registry put over all endpoints (etcd client/v3). One PD down,
 * first or last in the list, must not stop a node that another PD answers. In-process, over one
 * plain HTTP PD on 127.0.0.1:0 and a loopback port nobody listens on; no waiting: the deadlines
 * are already past, so one round over the list must do.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import { reachPd, registerNode } from '../../lab/emulators/binlog/node';
import type { Logger } from '../../lab/emulators/common/log';
import { freePort } from '../support/loopback-tls';

const quiet = { debug() {}, info() {}, warn() {}, error() {}, fatal() {} } as unknown as Logger;
/** A cluster id above 2^53, as PD's are: it must come through the lossless JSON parse. */
const CLUSTER_ID = '7318452719427125236';

let pd: http.Server;
let up: string;
let down: string;
const puts: string[] = [];

beforeAll(async () => {
  pd = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET' && req.url === '/pd/api/v1/members') res.end(`{"header":{"cluster_id":${CLUSTER_ID}},"members":[]}`);
      else if (req.method === 'POST' && req.url === '/pd/api/v1/emulator/tso') res.end('{"timestamp":449934412054528001}');
      else if (req.method === 'POST' && req.url === '/v3/kv/put') {
        puts.push(Buffer.from(JSON.parse(body).key, 'base64').toString());
        res.end('{"header":{}}');
      } else res.writeHead(404).end('{}');
    });
  });
  await new Promise<void>((r) => pd.listen(0, '127.0.0.1', r));
  up = `http://127.0.0.1:${(pd.address() as AddressInfo).port}`;
  down = `http://127.0.0.1:${await freePort()}`;
});
afterAll(async () => {
  await new Promise<void>((r) => {
    pd.close(() => r());
    pd.closeAllConnections(); // the emulator's requests leave their connections open
  });
});

describe.each([
  ['the first PD answers, the last is down', () => [up, down]],
  ['the first PD is down, the last answers', () => [down, up]],
])('binlog node and PD: %s', (_name, urls) => {
  it('reaches PD: the cluster id and a TSO', async () => {
    expect(await reachPd(urls(), undefined, 0, quiet)).toEqual({ clusterId: BigInt(CLUSTER_ID), ts: 449934412054528001n });
  });

  it('registers the node in PD\'s etcd', async () => {
    const id = `127.0.0.1:${Math.random().toString(36).slice(2, 8)}`;
    await registerNode(urls(), undefined, 'pumps', { nodeId: id, state: 'online' }, quiet, 0);
    expect(puts).toContain(`/tidb-binlog/v1/pumps/${id}`);
  });
});
