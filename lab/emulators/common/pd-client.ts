import type * as tls from 'tls';
import { httpRequest, HttpResult } from './http';
import { Json, parseJsonLossless } from './json';
import { clientTlsOptions, serverCNCheck, TlsPaths } from './tls';

/**
 * What the other emulators use to talk to PD's client port. The scheme follows the caller's TLS
 * setting (TiKV, TiDB and TiFlash strip any scheme from their PD addresses and use https exactly
 * when they have a CA configured); TiCDC keeps the scheme it was given.
 */
export function stripScheme(ep: string): string {
  return ep.trim().replace(/^[a-zA-Z]+:\/\//, '').replace(/\/+$/, '');
}

export class PdClient {
  private next = 0;
  constructor(
    readonly endpoints: string[],
    private readonly tlsPaths: TlsPaths | undefined,
    private readonly keepScheme = false,
    /** CNs the PD server certificate must carry (a Go client's VerifyPeerCertificate); empty = no check. */
    private readonly serverAllowedCN: string[] = [],
  ) {
    if (endpoints.length === 0) throw new Error('empty PD endpoints');
  }

  urlFor(ep: string): string {
    if (this.keepScheme && /^[a-z]+:\/\//i.test(ep)) return ep.replace(/\/+$/, '');
    return `${this.tlsPaths ? 'https' : 'http'}://${stripScheme(ep)}`;
  }

  private tlsOptions(): tls.ConnectionOptions | undefined {
    if (!this.tlsPaths) return undefined;
    const o = clientTlsOptions(this.tlsPaths);
    return this.serverAllowedCN.length ? { ...o, checkServerIdentity: serverCNCheck(this.serverAllowedCN) } : o;
  }

  /** Tries each endpoint (starting from the last one that worked); throws the last error when none answers. */
  async request(path: string, opts: { method?: string; body?: string; timeoutMs?: number } = {}): Promise<HttpResult> {
    let lastErr: Error | undefined;
    for (let k = 0; k < this.endpoints.length; k++) {
      const idx = (this.next + k) % this.endpoints.length;
      try {
        const res = await httpRequest(this.urlFor(this.endpoints[idx]) + path, { ...opts, tls: this.tlsOptions() });
        this.next = idx;
        return res;
      } catch (e) {
        lastErr = e as Error;
      }
    }
    throw lastErr ?? new Error('no PD endpoint');
  }

  async json(path: string, opts: { method?: string; body?: string } = {}): Promise<Json> {
    const res = await this.request(path, opts);
    if (res.status !== 200) throw new Error(`PD ${path} answered ${res.status}: ${res.body.trim()}`);
    return parseJsonLossless(res.body);
  }
}

export interface HeartbeatRequest {
  store_id?: string;
  address: string;
  peer_address: string;
  status_address: string;
  version: string;
  git_hash: string;
  labels: { key: string; value: string }[];
  start_timestamp: number;
  deploy_path: string;
}
