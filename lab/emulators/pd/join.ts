import * as fs from 'fs';
import * as path from 'path';
import { sleep } from '../common/http';
import type { Logger } from '../common/log';
import { pdClientTlsOptions } from '../common/tls';
import { Version, versionAtLeast } from '../common/version';
import { tlsEnabled, type PdConfig } from './config';
import { EtcdMember, Gateway, GatewayError } from './etcd';
import { GrpcGateway } from './etcd-grpc';

/**
 * PD's join logic as v6.5.0 … v8.5.0 have it (server/join/join.go `PrepareJoinCluster`), against
 * the existing PDs' client URLs:
 * - join == own advertise-client-urls → "join self is forbidden";
 * - a `join` file in the data dir (written after a successful member add) → reuse it, state existing;
 * - data already present (data-dir/member) → state existing, etcd reads its own membership;
 * - otherwise list members: any member without a name → "there is a member <id> that has not
 *   joined successfully" (v8.4+; before: without the id); one with our name → "missing data or
 *   join a duplicated pd". Neither is ever removed: only newer PD (tikv/pd#9199) reuses a
 *   half-joined member with our peer URLs.
 * - one member add, not retried (an etcd refusal such as "unhealthy cluster" is fatal: PD exits
 *   with "join meet error"), then up to 20 member lists 500 ms apart until the new member shows,
 *   the initial-cluster built from it and persisted in `<data-dir>/join`.
 */
export class JoinError extends Error {}

export interface JoinResult {
  initialCluster: string;
  state: 'new' | 'existing';
}

const LIST_MEMBER_RETRY_TIMES = 20;

export function isDataExist(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

export function clientGatewayFor(cfg: PdConfig, url: string): Gateway {
  const tlsOpts = tlsEnabled(cfg) ? () => pdClientTlsOptions({ ca: cfg.security.ca, cert: cfg.security.cert, key: cfg.security.key }, cfg.security.allowedCN) : undefined;
  return new GrpcGateway(url.replace(/\/+$/, ''), tlsOpts); // real PD joins with clientv3 (gRPC)
}

async function anyEndpoint<T>(cfg: PdConfig, fn: (g: Gateway) => Promise<T>): Promise<T> {
  let last: Error | undefined;
  for (const u of cfg.join.split(',').map((s) => s.trim()).filter(Boolean)) {
    try {
      return await fn(clientGatewayFor(cfg, u));
    } catch (e) {
      last = e as Error;
      if (e instanceof GatewayError && e.status !== 0) throw e;
    }
  }
  throw last ?? new JoinError('empty join list');
}

/** PD's text for a nameless member: the id is in it from v8.4.0 (not at v8.1.0; at v8.4.0 and v8.5.0). */
export function notJoinedMessage(id: bigint, version: Version): string {
  return versionAtLeast(version, 'v8.4.0') ? `there is a member ${id} that has not joined successfully` : 'there is a member that has not joined successfully';
}

export async function prepareJoin(cfg: PdConfig, log: Logger, version: Version): Promise<JoinResult | undefined> {
  if (!cfg.join) return undefined;
  if (cfg.join === cfg.advertiseClientUrls.join(',')) throw new JoinError('join self is forbidden');
  log.info('prepare join cluster', { name: cfg.name, join: cfg.join });

  const joinFile = path.join(cfg.dataDir, 'join');
  if (fs.existsSync(joinFile)) {
    return { initialCluster: fs.readFileSync(joinFile, 'utf8').trim(), state: 'existing' };
  }
  if (isDataExist(path.join(cfg.dataDir, 'member'))) return { initialCluster: '', state: 'existing' };

  const nameless = (m: EtcdMember): JoinError => {
    log.error('there is an abnormal joined member in the current member list', { id: m.id.toString(), 'peer-urls': m.peerURLs.join(','), 'client-urls': m.clientURLs.join(',') });
    return new JoinError(notJoinedMessage(m.id, version));
  };
  let members: EtcdMember[] = await anyEndpoint(cfg, (g) => g.members());
  let existed = false;
  for (const m of members) {
    if (m.name === '') throw nameless(m);
    if (m.name === cfg.name) existed = true;
  }
  if (existed) throw new JoinError('missing data or join a duplicated pd');

  // etcdutil.AddEtcdMember: one MemberAdd; its error ends the join.
  const r = await anyEndpoint(cfg, (g) => g.call('/v3/cluster/member/add', { peerURLs: cfg.advertisePeerUrls }));
  const newId = BigInt(String((r.member as Record<string, unknown>).ID));

  let pds: string[] = [];
  let listSucc = false;
  for (let i = 0; i < LIST_MEMBER_RETRY_TIMES && !listSucc; i++) {
    members = await anyEndpoint(cfg, (g) => g.members());
    pds = [];
    for (const m of members) {
      let n = m.name;
      if (m.id === newId) {
        n = cfg.name;
        listSucc = true;
      }
      if (!n) throw nameless(m);
      for (const u of m.peerURLs) pds.push(`${n}=${u}`);
    }
    if (!listSucc) await sleep(500);
  }
  if (!listSucc) throw new JoinError(`join failed, adds the new member ${cfg.name} may failed`);
  const initialCluster = pds.join(',');
  log.info('save initial cluster info', { join: initialCluster });
  fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(joinFile, initialCluster, { mode: 0o600 });
  return { initialCluster, state: 'existing' };
}
