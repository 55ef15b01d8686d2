/**
 * Loopback TLS servers for unit tests of the live checks (`tiseal audit`, `tls status`): each
 * listens on 127.0.0.1, port 0, and serves a certificate issued by tiseal's own PKI code (a CA in
 * a temp state dir, as `tls enable` leaves it) or by a foreign CA. Nothing but loopback sockets;
 * `close()` ends the server and every connection it accepted.
 */
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import type { AddressInfo } from 'net';
import { CertStore, createCA, issueLeaf, type CertificateAuthority, type IssuedCert } from '../../src/pki';

const DAY_MS = 86_400_000;

export interface PortSpec {
  /** What answers on the port: TLS (default), plaintext HTTP, or nothing (connection refused). */
  kind?: 'tls' | 'plain' | 'closed';
  /** Whole days the served certificate has left, as `tls status` counts them (default 365); negative: expired. */
  daysLeft?: number;
  /** The certificate comes from another CA than the cluster's. */
  foreign?: boolean;
  /** A client without a certificate is served (default: refused, as PD/TiKV refuse one). */
  anonymous?: boolean;
  /** TLS 1.0 and 1.1 are accepted too (default: 1.2 minimum). */
  oldTls?: boolean;
}

export interface Served {
  port: number;
  close: () => Promise<void>;
}

/**
 * The cluster CA (created 10 days ago so already expired leaves can be issued from it) and
 * tiseal's client certificate, saved in `stateDir` for cluster `cluster` as `tls enable` saves them.
 */
export class LoopbackPki {
  private foreignCa?: CertificateAuthority;
  private constructor(
    readonly store: CertStore,
    readonly ca: CertificateAuthority,
  ) {}

  static async create(stateDir: string, cluster: string): Promise<LoopbackPki> {
    const store = new CertStore(stateDir, cluster);
    const ca = await createCA({ cluster, keyType: 'ecdsa', now: new Date(Date.now() - 10 * DAY_MS) });
    await store.saveCA(ca);
    const client = await issueLeaf(ca, { commonName: 'tiseal', usage: 'client', keyType: 'ecdsa' });
    await store.saveClient({ certPem: client.certPem, keyPem: client.keyPem });
    return new LoopbackPki(store, ca);
  }

  /**
   * A server certificate for 127.0.0.1 whose notAfter lies half a day past `daysLeft` whole days
   * from now, so the floor `tls status` takes is `daysLeft` whatever the test's own duration.
   */
  async leaf(cn: string, daysLeft = 365, foreign = false): Promise<IssuedCert> {
    const ca = foreign ? (this.foreignCa ??= await createCA({ cluster: 'foreign', keyType: 'ecdsa', now: new Date(Date.now() - 10 * DAY_MS) })) : this.ca;
    const back = Math.max(0, -daysLeft); // whole days issued in the past, so `days` stays ≥ 1
    return issueLeaf(ca, { commonName: cn, hosts: ['127.0.0.1'], keyType: 'ecdsa', days: daysLeft + back + 1, now: new Date(Date.now() - (back + 0.5) * DAY_MS) });
  }

  /** A server on 127.0.0.1:0 as `spec` says; `handler` answers HTTP requests (default 200 "ok"). */
  async serve(cn: string, spec: PortSpec = {}, handler?: http.RequestListener): Promise<Served> {
    const answer: http.RequestListener = handler ?? ((_req, res) => res.end('ok'));
    if (spec.kind === 'closed') return { port: await freePort(), close: async () => undefined };
    if (spec.kind === 'plain') return track(http.createServer(answer));
    return this.serveCert(await this.leaf(cn, spec.daysLeft, spec.foreign), spec, answer);
  }

  /** A TLS server on 127.0.0.1:0 serving `leaf`, otherwise as `spec` says. */
  serveCert(leaf: IssuedCert, spec: PortSpec = {}, answer: http.RequestListener = (_req, res) => res.end('ok')): Promise<Served> {
    return track(
      https.createServer(
        {
          key: leaf.keyPem,
          cert: leaf.fullChainPem,
          ca: this.ca.bundlePem,
          requestCert: !spec.anonymous,
          rejectUnauthorized: !spec.anonymous,
          minVersion: spec.oldTls ? 'TLSv1' : 'TLSv1.2',
          ciphers: spec.oldTls ? 'DEFAULT@SECLEVEL=0' : undefined,
        },
        answer,
      ),
    );
  }
}

/** A loopback port nothing listens on: bound by the kernel (port 0), then released. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  const port = await listen(s);
  await new Promise((r) => s.close(r));
  return port;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

async function track(server: http.Server | https.Server): Promise<Served> {
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('tlsClientError', () => undefined);
  const port = await listen(server);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
