import * as fs from 'fs';
import * as path from 'path';
import { sleep } from '../common/http';
import type { Logger } from '../common/log';
import { pdClientTlsOptions } from '../common/tls';
import { tlsEnabled, type PdConfig } from './config';
import { EtcdMember, Gateway, GatewayError } from './etcd';

/**
 * PD's join logic (server/join/join.go, v8.5), against the existing PDs' client URLs:
 * - join == own advertise-client-urls → "join self is forbidden";
 * - a `join` file in the data dir (written after a successful join) → reuse it, state existing;
 * - data already present (data-dir/member) → state existing, etcd reads its own membership;
 * - otherwise list members; same name with other peer URLs → "missing data or join a duplicated pd";
 *   same name and same peer URLs (lost data) → remove that member first; then member add (retried,
 *   etcd refuses a second add while the newest member is not yet connected), build the
 *   initial-cluster from the member list and persist it in `<data-dir>/join`.
 */
export class JoinError extends Error {}

export interface JoinResult {
  initialCluster: string;
  state: 'new' | 'existing';
}

export function isDataExist(dir: string): boolean {
  try {
    return fs.readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

function sameUrls(a: string[], b: string[]): boolean {
  return [...a].sort().join(',') === [...b].sort().join(',');
}

export function clientGatewayFor(cfg: PdConfig, url: string): Gateway {
  const tlsOpts = tlsEnabled(cfg) ? () => pdClientTlsOptions({ ca: cfg.security.ca, cert: cfg.security.cert, key: cfg.security.key }, cfg.security.allowedCN) : undefined;
  return new Gateway(url.replace(/\/+$/, ''), tlsOpts);
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

export async function prepareJoin(cfg: PdConfig, log: Logger): Promise<JoinResult | undefined> {
  if (!cfg.join) return undefined;
  if (cfg.join === cfg.advertiseClientUrls.join(',')) throw new JoinError('join self is forbidden');
  log.info('prepare join cluster', { name: cfg.name, join: cfg.join });

  const joinFile = path.join(cfg.dataDir, 'join');
  if (fs.existsSync(joinFile)) {
    return { initialCluster: fs.readFileSync(joinFile, 'utf8').trim(), state: 'existing' };
  }
  if (isDataExist(path.join(cfg.dataDir, 'member'))) return { initialCluster: '', state: 'existing' };

  let members: EtcdMember[] = await anyEndpoint(cfg, (g) => g.members());
  let existed = false;
  let missingData: EtcdMember | undefined;
  for (const m of members) {
    if (m.name === cfg.name || (m.name === '' && sameUrls(m.peerURLs, cfg.advertisePeerUrls))) {
      log.info('found member', { name: m.name, 'peer urls': m.peerURLs.join(',') });
      if (sameUrls(m.peerURLs, cfg.advertisePeerUrls)) missingData = m;
      else if (m.name === cfg.name) existed = true;
    }
  }
  if (existed) throw new JoinError('missing data or join a duplicated pd');
  if (missingData) {
    try {
      await anyEndpoint(cfg, (g) => g.call('/v3/cluster/member/remove', { ID: missingData!.id.toString() }));
    } catch (e) {
      log.warn('del etcd member fail', { id: missingData.id.toString(), error: (e as Error).message });
      throw new JoinError('missing data or join a duplicated pd');
    }
  }

  let newId: bigint | undefined;
  for (;;) {
    try {
      const r = await anyEndpoint(cfg, (g) => g.call('/v3/cluster/member/add', { peerURLs: cfg.advertisePeerUrls }));
      newId = BigInt(String((r.member as Record<string, unknown>).ID));
      break;
    } catch (e) {
      log.warn('add etcd member fail', { error: (e as Error).message });
      await sleep(1000);
    }
  }

  members = await anyEndpoint(cfg, (g) => g.members());
  const pds: string[] = [];
  for (const m of members) {
    const n = m.id === newId ? cfg.name : m.name;
    if (!n) throw new JoinError('there is a member that has not joined successfully');
    for (const u of m.peerURLs) pds.push(`${n}=${u}`);
  }
  if (!members.some((m) => m.id === newId)) throw new JoinError(`join failed, adds the new member ${cfg.name} may failed`);
  const initialCluster = pds.join(',');
  log.info('save initial cluster info', { join: initialCluster });
  fs.mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  fs.writeFileSync(joinFile, initialCluster, { mode: 0o600 });
  return { initialCluster, state: 'existing' };
}
