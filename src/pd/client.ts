import { TisealError } from '../errors';
import { ClientTls, HttpResponse, request } from '../util/http';
import { parseLosslessJson } from '../util/lossless-json';
import { EtcdKv, EtcdMember, EtcdRpcError, getKey, isTransportFailure, memberList, memberUpdate, putIfCreated, Scheme } from './etcd-grpc';

export type { EtcdKv, EtcdMember, Scheme } from './etcd-grpc';

export interface PdMember {
  name: string;
  /** uint64 as a decimal string (lossless). */
  memberId: string;
  peerUrls: string[];
  clientUrls: string[];
}

export interface PdStore {
  id: string;
  address: string;
  statusAddress?: string;
  stateName: string;
  version?: string;
  labels: Array<{ key: string; value: string }>;
  isTiFlash: boolean;
}

/**
 * PD's HTTP API and, for what PD's API lacks (member list with peer URLs as etcd stores them,
 * member update), etcd's gRPC Cluster service on the same port (etcd-grpc.ts), from the control
 * machine. During a TLS switch a PD may answer on either scheme, so each call tries the preferred
 * scheme first and falls back to the other; endpoints that do not answer are skipped.
 * With `tlsOnly` (the cluster is recorded as TLS) plaintext is never tried: whoever answers
 * http on PD's port is not PD, and would otherwise feed status, audit and membership calls.
 */
export class PdClient {
  private preferred: Scheme;
  private tlsOnly: false | { why: string };
  constructor(
    private endpoints: string[], // host:port
    private tls: ClientTls | undefined,
    opts: { prefer?: Scheme; timeoutMs?: number; tlsOnly?: string } = {},
  ) {
    this.tlsOnly = opts.tlsOnly ? { why: opts.tlsOnly } : false;
    this.preferred = this.tlsOnly ? 'https' : opts.prefer ?? (tls ? 'https' : 'http');
    this.timeoutMs = opts.timeoutMs ?? 5000;
  }
  private timeoutMs: number;

  /** From now on only https (`why`: what records the cluster as TLS, for the error). */
  requireTls(why: string): void {
    this.tlsOnly = { why };
    this.preferred = 'https';
  }

  get plaintextAllowed(): boolean {
    return !this.tlsOnly;
  }

  /** TLS material becomes available (or changes) during a run: the certificates step sets it. */
  setTls(tls: ClientTls | undefined): void {
    this.tls = tls;
  }

  setEndpoints(endpoints: string[]): void {
    this.endpoints = endpoints;
  }

  /** The scheme that last worked (tasks use it to report what PD speaks now). */
  get scheme(): Scheme {
    return this.preferred;
  }

  private schemes(): Scheme[] {
    if (this.tlsOnly) return ['https'];
    const other: Scheme = this.preferred === 'https' ? 'http' : 'https';
    return this.tls ? [this.preferred, other] : ['http'];
  }

  private assertUsable(endpoint: string | undefined): void {
    if (this.tlsOnly && !this.tls) {
      throw new TisealError(`PD ${endpoint ?? ''}: ${this.tlsOnly.why}, but there is no client certificate to call PD over https (plaintext is not tried)`, {
        suggestion: 'restore the state dir (ca.crt, client.crt, client.key) or run tiseal tls rotate --ca',
      });
    }
  }

  /** Call one endpoint (host:port) with scheme fallback. */
  async callEndpoint(endpoint: string, method: string, path: string, body?: unknown): Promise<HttpResponse> {
    this.assertUsable(endpoint);
    let lastErr: unknown;
    for (const scheme of this.schemes()) {
      try {
        const res = await request(`${scheme}://${endpoint}${path}`, { method, body: body === undefined ? undefined : JSON.stringify(body), tls: this.tls, timeoutMs: this.timeoutMs });
        this.preferred = scheme;
        return res;
      } catch (e) {
        lastErr = e;
      }
    }
    throw lastErr;
  }

  /** Call the first endpoint that answers. */
  async call(method: string, path: string, body?: unknown, only?: string[]): Promise<HttpResponse & { endpoint: string }> {
    this.assertUsable(only?.[0] ?? this.endpoints[0]);
    const errors: string[] = [];
    for (const ep of only ?? this.endpoints) {
      try {
        const res = await this.callEndpoint(ep, method, path, body);
        return { ...res, endpoint: ep };
      } catch (e) {
        errors.push(`${ep}: ${(e as Error).message}`);
      }
    }
    const tlsOnly = this.tlsOnly ? ` over https (${this.tlsOnly.why}: plaintext is not tried)` : '';
    throw new TisealError(`PD is not reachable${tlsOnly} (${errors.join('; ')})`, {
      suggestion: `check that at least one PD is running (systemctl status pd-<port>) and that this machine can reach its client port${this.tlsOnly ? '; if TLS was turned off outside tiseal, run tiseal tls disable' : ''}`,
    });
  }

  private async json<T>(method: string, path: string, body?: unknown, only?: string[]): Promise<T> {
    const res = await this.call(method, path, body, only);
    if (res.status < 200 || res.status >= 300) {
      throw new TisealError(`PD ${res.endpoint} ${method} ${path}: HTTP ${res.status}: ${res.body.trim().slice(0, 300)}`);
    }
    return parseLosslessJson<T>(res.body);
  }

  async members(only?: string[]): Promise<{ clusterId: string; members: PdMember[]; leader?: PdMember }> {
    type Raw = { name?: string; member_id?: string | number; peer_urls?: string[]; client_urls?: string[] };
    const r = await this.json<{ header?: { cluster_id?: string | number }; members?: Raw[]; leader?: Raw }>('GET', '/pd/api/v1/members', undefined, only);
    const conv = (m: Raw): PdMember => ({ name: m.name ?? '', memberId: String(m.member_id ?? ''), peerUrls: m.peer_urls ?? [], clientUrls: m.client_urls ?? [] });
    return { clusterId: String(r.header?.cluster_id ?? ''), members: (r.members ?? []).map(conv), leader: r.leader?.name ? conv(r.leader) : undefined };
  }

  /** Ask a member other than the one leaving (`only`): a member removing itself stops mid-answer. */
  async deleteMember(name: string, only?: string[]): Promise<'removed' | 'not-found'> {
    const res = await this.call('DELETE', `/pd/api/v1/members/name/${encodeURIComponent(name)}`, undefined, only);
    if (res.status === 404) return 'not-found';
    if (res.status < 200 || res.status >= 300) throw new TisealError(`PD refused to remove member ${name}: HTTP ${res.status}: ${res.body.trim().slice(0, 300)}`);
    return 'removed';
  }

  async transferLeader(name: string, only?: string[]): Promise<void> {
    const res = await this.call('POST', `/pd/api/v1/leader/transfer/${encodeURIComponent(name)}`, undefined, only);
    if (res.status < 200 || res.status >= 300) throw new TisealError(`PD leader transfer to ${name} failed: HTTP ${res.status}: ${res.body.trim().slice(0, 300)}`);
  }

  async health(only?: string[]): Promise<Array<{ name: string; memberId: string; clientUrls: string[]; health: boolean }>> {
    type Raw = { name: string; member_id: string | number; client_urls?: string[]; health: boolean };
    const r = await this.json<Raw[]>('GET', '/pd/api/v1/health', undefined, only);
    return r.map((h) => ({ name: h.name, memberId: String(h.member_id), clientUrls: h.client_urls ?? [], health: Boolean(h.health) }));
  }

  async stores(): Promise<PdStore[]> {
    type Raw = { store: { id: string | number; address: string; status_address?: string; state_name?: string; version?: string; labels?: Array<{ key: string; value: string }> } };
    const r = await this.json<{ stores?: Raw[] }>('GET', '/pd/api/v1/stores');
    return (r.stores ?? []).map(({ store: s }) => {
      const labels = s.labels ?? [];
      return { id: String(s.id), address: s.address, statusAddress: s.status_address, stateName: s.state_name ?? 'Unknown', version: s.version, labels, isTiFlash: labels.some((l) => l.key === 'engine' && l.value === 'tiflash') };
    });
  }

  async status(only?: string[]): Promise<{ version?: string }> {
    return this.json<{ version?: string }>('GET', '/pd/api/v1/status', undefined, only);
  }

  /** An etcd gRPC call on the first endpoint and scheme that serve it (same fallback as call()). */
  private async etcd<T>(what: string, fn: (endpoint: string, scheme: Scheme) => Promise<T>, only?: string[]): Promise<T> {
    this.assertUsable(only?.[0] ?? this.endpoints[0]);
    const errors: string[] = [];
    for (const ep of only ?? this.endpoints) {
      for (const scheme of this.schemes()) {
        try {
          const r = await fn(ep, scheme);
          this.preferred = scheme;
          return r;
        } catch (e) {
          // The server answered with an error: that is the answer, not a reason to try elsewhere.
          if (e instanceof EtcdRpcError && !isTransportFailure(e)) {
            throw new TisealError(`PD ${ep} refused etcd ${what}: ${e.message}`, { suggestion: 'check the PD logs (log/pd.log) on that host, then re-run the same command' });
          }
          errors.push((e as Error).message);
        }
      }
    }
    const tlsOnly = this.tlsOnly ? ` over https (${this.tlsOnly.why}: plaintext is not tried)` : '';
    throw new TisealError(`PD's etcd gRPC service is not reachable${tlsOnly} for ${what} (${errors.join('; ')})`, {
      suggestion: `check that at least one PD is running (systemctl status pd-<port>) and that this machine can reach its client port${this.tlsOnly ? '; if TLS was turned off outside tiseal, run tiseal tls disable' : ''}`,
    });
  }

  /** One key through etcd's KV service; linearizable unless `serializable` (see getKey). */
  async etcdGet(key: string, o: { only?: string[]; serializable?: boolean; timeoutMs?: number } = {}): Promise<EtcdKv | undefined> {
    return this.etcd(`get ${key}`, (ep, scheme) => getKey(ep, scheme, this.tls, o.timeoutMs ?? this.timeoutMs, key, o.serializable), o.only);
  }

  /** etcd Txn: put `key` when `guard` exists (or not) and, given `valueWas`, the key still holds it. */
  async etcdPutIf(key: string, value: Buffer, guard: { key: string; exists: boolean }, valueWas: Buffer | undefined, only?: string[]): Promise<boolean> {
    return this.etcd(`txn put ${key}`, (ep, scheme) => putIfCreated(ep, scheme, this.tls, this.timeoutMs, key, value, guard, valueWas), only);
  }

  async etcdMembers(only?: string[]): Promise<EtcdMember[]> {
    return this.etcd('member list', (ep, scheme) => memberList(ep, scheme, this.tls, this.timeoutMs), only);
  }

  async etcdMemberUpdate(id: string, peerUrls: string[], only?: string[]): Promise<void> {
    if (!/^\d+$/.test(id)) throw new TisealError(`etcd member ID must be a decimal uint64, got ${JSON.stringify(id)}`, { suggestion: 'use the ID from the member list (etcdctl member list -w json prints it in decimal)' });
    await this.etcd(`member update ${id}`, (ep, scheme) => memberUpdate(ep, scheme, this.tls, this.timeoutMs, id, peerUrls), only);
  }
}
