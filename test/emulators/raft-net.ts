/** Loopback plumbing shared by the raft tests: one server per store, and the region they form. */
import * as net from 'net';
import type { RegionMeta } from '../../lab/emulators/tikv/raft-storage';

/**
 * A server that hands each connection's first line (a raft message, prefix stripped) to `onMessage`;
 * a connection `accept` refuses is dropped before anything is read (a store that is down).
 */
export async function raftServer(onMessage: (msg: string, sock: net.Socket) => void, accept: () => boolean = () => true): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer((sock) => {
    if (!accept()) return sock.destroy();
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) onMessage(buf.slice(0, nl).replace(/^raft /, ''), sock);
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** Region 1 over stores 1..n (the ports' order), store 1 its bootstrap leader. */
export function regionOver(ports: number[]): RegionMeta {
  return {
    id: 1, start_key: '', end_key: '', conf_ver: 1, peers: ports.map((_, i) => i + 1), bootstrap_leader: 1,
    peer_addresses: Object.fromEntries(ports.map((p, i) => [String(i + 1), `127.0.0.1:${p}`])),
  };
}
