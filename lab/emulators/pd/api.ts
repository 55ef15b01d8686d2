import * as http from 'http';
import * as fs from 'fs';
import * as path from 'path';
import type * as tls from 'tls';
import { httpRequest } from '../common/http';
import { metricsText } from '../common/status-http';
import { Json, parseJsonLossless, toJson } from '../common/json';
import type { Logger } from '../common/log';
import { formatGoDuration } from '../common/toml';
import { EMULATOR_BUILD_TS, EMULATOR_GIT_HASH, Version } from '../common/version';
import {
  deleteMemberInfo, getStore, listStores, loadMemberInfos, MemberInfo, putStore, StoreConflict, storeHeartbeat, StoreRecord,
  stateName,
} from './cluster';
import type { PdConfig } from './config';
import { EtcdMember, EtcdProcess, GatewayError } from './etcd';
import { gatewayFailure, GrpcGateway } from './etcd-grpc';
import { NotLeaderError, TsoAllocator } from './tso';
import { leaderOperators } from './operators';
import { checkRegions, decodeLeaders, isTiflash, listRegions, RegionRecord, regionJson, reportLeaders, storeCounts } from './regions';
import { addScheduler, deleteScheduler, evictedStores, evictLeaderConfig, listSchedulers } from './schedulers';

/**
 * PD's HTTP API (prefix /pd/api/v1) over the data in etcd, plus the forwarding of `/v3/*` to
 * etcd's JSON gateway. JSON is written with raw uint64 numbers (member_id, cluster_id,
 * last_heartbeat), like PD.
 */
export interface PdContext {
  cfg: PdConfig;
  version: Version;
  log: Logger;
  etcd: EtcdProcess;
  ready: Promise<{ cid: bigint; memberId: bigint }>;
  startTimestamp: number;
  clientTls?: () => tls.ConnectionOptions;
  /** v8.4+, several CNs, TLS client port: etcd's JSON gateway cannot reach its own gRPC (etcd-grpc.ts). */
  gatewayDialFails?: boolean;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = toJson(body, 2);
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function memberJson(m: EtcdMember, info: MemberInfo | undefined): Record<string, unknown> {
  return {
    name: m.name,
    member_id: m.id,
    peer_urls: m.peerURLs,
    client_urls: m.clientURLs,
    deploy_path: info?.deploy_path,
    binary_version: info?.binary_version,
    git_hash: info?.git_hash,
  };
}

function storeJson(s: StoreRecord, ctx: PdContext, regions: RegionRecord[]): Record<string, unknown> {
  const counts = storeCounts(regions, s.id);
  const now = Date.now();
  const name = stateName(s, ctx.cfg.maxStoreDownTimeMs, now);
  const lastMs = Number(s.last_heartbeat / 1000000n);
  const state = s.state === 'Offline' ? 1 : s.state === 'Tombstone' ? 2 : undefined;
  return {
    store: {
      id: s.id,
      address: s.address,
      state,
      labels: s.labels.length ? s.labels : undefined,
      version: s.version,
      peer_address: s.peer_address,
      status_address: s.status_address,
      git_hash: s.git_hash,
      start_timestamp: s.start_timestamp,
      deploy_path: s.deploy_path,
      last_heartbeat: s.last_heartbeat,
      state_name: name,
    },
    status: {
      capacity: '100GiB',
      available: '90GiB',
      used_size: '1GiB',
      // StoreStatus fields are `omitempty` (server/api/store.go): a store without leaders has no leader_count.
      leader_count: counts.leader_count || undefined,
      leader_weight: 1,
      leader_score: counts.leader_count || undefined,
      leader_size: counts.leader_count || undefined,
      region_count: counts.region_count || undefined,
      region_weight: 1,
      region_score: counts.region_count || undefined,
      region_size: counts.region_count || undefined,
      slow_score: 1,
      start_ts: new Date(s.start_timestamp * 1000).toISOString().replace(/\.\d+Z$/, 'Z'),
      last_heartbeat_ts: new Date(lastMs).toISOString(),
      uptime: formatGoDuration(Math.max(0, lastMs - s.start_timestamp * 1000)),
    },
  };
}

async function leaderMember(ctx: PdContext): Promise<{ members: EtcdMember[]; leader?: EtcdMember }> {
  const g = ctx.etcd.gateway;
  const [members, status] = await Promise.all([g.members(), g.status()]);
  return { members, leader: members.find((m) => m.id === status.leaderId) };
}

/** MoveLeader must be sent to the current etcd leader: over gRPC to its PD client URL, like PD's etcd client. */
async function moveLeader(ctx: PdContext, leader: EtcdMember, target: EtcdMember): Promise<void> {
  const { memberId } = await ctx.ready;
  const g = leader.id === memberId ? ctx.etcd.gateway : new GrpcGateway(leader.clientURLs[0], ctx.clientTls);
  await g.call('/v3/maintenance/transfer-leadership', { targetID: target.id.toString() }, 10000);
}

async function health(ctx: PdContext): Promise<Record<string, unknown>[]> {
  const members = await ctx.etcd.gateway.members();
  return Promise.all(
    members.map(async (m) => {
      let ok = false;
      for (const u of m.clientURLs) {
        try {
          const r = await httpRequest(`${u}/pd/api/v1/ping`, { tls: u.startsWith('https') ? ctx.clientTls?.() : undefined, timeoutMs: 2000 });
          if (r.status === 200) {
            ok = true;
            break;
          }
        } catch {
          /* unhealthy */
        }
      }
      return { name: m.name, member_id: m.id, client_urls: m.clientURLs, health: ok && m.name !== '' };
    }),
  );
}

function configJson(ctx: PdContext, cid: bigint): Record<string, unknown> {
  const c = ctx.cfg;
  return {
    'client-urls': c.clientUrls.join(','),
    'peer-urls': c.peerUrls.join(','),
    'advertise-client-urls': c.advertiseClientUrls.join(','),
    'advertise-peer-urls': c.advertisePeerUrls.join(','),
    name: c.name,
    'data-dir': c.dataDir,
    'force-new-cluster': false,
    'enable-grpc-gateway': true,
    'initial-cluster': c.initialCluster,
    'initial-cluster-state': c.initialClusterState,
    'initial-cluster-token': 'pd-cluster',
    join: c.join,
    lease: 3,
    log: { level: 'info', file: { filename: c.logFile ?? '' } },
    'tso-save-interval': '3s',
    schedule: {
      'max-store-down-time': formatGoDuration(c.maxStoreDownTimeMs),
      'leader-schedule-policy': c.leaderSchedulePolicy,
    },
    replication: replicateJson(ctx),
    'cluster-version': ctx.version.text.slice(1),
    'quota-backend-bytes': '8GiB',
    'auto-compaction-mode': 'periodic',
    'auto-compaction-retention-v2': '1h',
    security: {
      'cacert-path': c.security.ca ?? '',
      'cert-path': c.security.cert ?? '',
      'key-path': c.security.key ?? '',
      'cert-allowed-cn': c.security.allowedCN.length ? c.security.allowedCN : null,
      'redact-info-log': false,
    },
    'cluster-id': cid,
  };
}

function replicateJson(ctx: PdContext): Record<string, unknown> {
  const c = ctx.cfg;
  return {
    'max-replicas': c.maxReplicas,
    'location-labels': c.locationLabels.join(','),
    'strictly-match-label': String(c.strictlyMatchLabel),
    'enable-placement-rules': String(c.enablePlacementRules),
    'enable-placement-rules-cache': 'false',
    'isolation-level': c.isolationLevel,
  };
}

/** `/v3/*` → etcd's JSON gateway on the private client port. */
/**
 * Test failpoint (PD itself is built with pingcap/failpoint for its own tests): while
 * `failpoint/pd-api-unavailable-until` in the deploy dir (the process's cwd, as TiUP's run script
 * does `cd` there) holds a future epoch-ms, every `/pd/api/*` call gets what PD answers when its
 * etcd calls time out: HTTP 500 with the error text (server/api/member.go: `h.rd.JSON(w,
 * http.StatusInternalServerError, err.Error())`; pkg/errs/errno.go ErrEtcdKVGet). The PD itself,
 * its etcd and its peers carry on: only its answers fail, as under an etcd hiccup.
 */
function apiFailpoint(): string | undefined {
  let until = 0;
  try {
    until = Number(fs.readFileSync(path.join('failpoint', 'pd-api-unavailable-until'), 'utf8').trim());
  } catch {
    return undefined;
  }
  return Date.now() < until ? '[PD:etcd:ErrEtcdKVGet]etcd KV get failed: context deadline exceeded' : undefined;
}

function forwardToEtcd(ctx: PdContext, req: http.IncomingMessage, res: http.ServerResponse): void {
  if (ctx.gatewayDialFails) {
    const f = gatewayFailure();
    req.resume();
    res.writeHead(f.status, { 'content-type': 'application/json' });
    res.end(f.body);
    return;
  }
  const u = new URL(ctx.etcd.clientUrl);
  const up = http.request(
    { host: u.hostname, port: u.port, method: req.method, path: req.url, headers: { ...req.headers, host: u.host }, agent: false },
    (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    },
  );
  up.on('error', (e) => send(res, 503, e.message));
  req.pipe(up);
}

/**
 * What a TiKV store's heartbeat gets back besides its state (stand-in for PD's region heartbeat
 * stream): its leaders' terms are recorded, the replica checker runs, and the answer carries the
 * regions it is a peer of (with the peers' addresses, as TiKV resolves them from PD) and the
 * leader operators for it (operators.ts).
 */
async function regionDuties(ctx: PdContext, cid: bigint, rec: StoreRecord, leaders: Json | undefined): Promise<Record<string, unknown>> {
  const g = ctx.etcd.gateway;
  await reportLeaders(g, cid, rec.id, decodeLeaders(leaders));
  const regions = await checkRegions(g, cid, ctx.cfg.maxReplicas, ctx.cfg.maxStoreDownTimeMs);
  const stores = await listStores(g, cid);
  const up = new Set(stores.filter((s) => stateName(s, ctx.cfg.maxStoreDownTimeMs) === 'Up').map((s) => s.id));
  const addr = new Map(stores.map((s) => [s.id, s.peer_address || s.address]));
  const mine = regions.filter((r) => r.peers.includes(rec.id));
  return {
    regions: mine.map((r) => ({ ...r, peer_addresses: Object.fromEntries(r.peers.map((p) => [String(p), addr.get(p) ?? ''])) })),
    operators: leaderOperators(regions, rec.id, (await evictedStores(g, cid)) ?? [], up),
  };
}

export function createApiHandler(ctx: PdContext): http.RequestListener {
  let tso: TsoAllocator | undefined;
  const routes: [string, RegExp, (m: RegExpExecArray, req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>][] = [
    ['GET', /^\/pd\/api\/v1\/ping$/, async (_m, _q, res) => {
      res.writeHead(200);
      res.end();
    }],
    ['GET', /^\/pd\/api\/v1\/version$/, async (_m, _q, res) => send(res, 200, { version: ctx.version.text })],
    // Prometheus scrapes PD's client port (TiUP's "pd" job); under TLS it needs the client certificate like any caller.
    ['GET', /^\/metrics$/, async (_m, _q, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(metricsText('pd', ctx.version.text));
    }],
    ['GET', /^\/pd\/api\/v1\/status$/, async (_m, _q, res) =>
      send(res, 200, { build_ts: EMULATOR_BUILD_TS, version: ctx.version.text, git_hash: EMULATOR_GIT_HASH, start_timestamp: ctx.startTimestamp })],
    ['GET', /^\/pd\/api\/v1\/members$/, async (_m, _q, res) => {
      const { cid } = await ctx.ready;
      const [{ members, leader }, infos] = await Promise.all([leaderMember(ctx), loadMemberInfos(ctx.etcd.gateway, cid)]);
      const js = (m: EtcdMember): Record<string, unknown> => memberJson(m, infos.get(m.id.toString()));
      send(res, 200, {
        header: { cluster_id: cid },
        members: members.map(js),
        leader: leader ? js(leader) : undefined,
        etcd_leader: leader ? js(leader) : undefined,
      });
    }],
    ['GET', /^\/pd\/api\/v1\/leader$/, async (_m, _q, res) => {
      const { cid } = await ctx.ready;
      const { leader } = await leaderMember(ctx);
      if (!leader) return send(res, 500, 'no leader');
      send(res, 200, memberJson(leader, (await loadMemberInfos(ctx.etcd.gateway, cid)).get(leader.id.toString())));
    }],
    ['POST', /^\/pd\/api\/v1\/leader\/resign$/, async (_m, _q, res) => {
      const { members, leader } = await leaderMember(ctx);
      if (!leader) return send(res, 500, 'no leader');
      const others = members.filter((m) => m.id !== leader.id && m.name !== '' && !m.isLearner);
      if (!others.length) return send(res, 500, 'no valid member to transfer the leader to');
      await moveLeader(ctx, leader, others[Math.floor(Math.random() * others.length)]);
      send(res, 200, 'The resign command is submitted.');
    }],
    ['POST', /^\/pd\/api\/v1\/leader\/transfer\/([^/]+)$/, async (m, _q, res) => {
      const name = decodeURIComponent(m[1]);
      const { members, leader } = await leaderMember(ctx);
      const target = members.find((x) => x.name === name);
      if (!target) return send(res, 500, `failed to transfer leader: not found, pd: ${name}`);
      if (!leader) return send(res, 500, 'no leader');
      if (target.id !== leader.id) await moveLeader(ctx, leader, target);
      send(res, 200, 'The transfer command is submitted.');
    }],
    ['DELETE', /^\/pd\/api\/v1\/members\/name\/([^/]+)$/, async (m, _q, res) => {
      const { cid } = await ctx.ready;
      const name = decodeURIComponent(m[1]);
      const target = (await ctx.etcd.gateway.members()).find((x) => x.name === name);
      if (!target) return send(res, 404, `not found, pd: ${name}`);
      await deleteMemberInfo(ctx.etcd.gateway, cid, target.id);
      await ctx.etcd.gateway.call('/v3/cluster/member/remove', { ID: target.id.toString() });
      send(res, 200, `removed, pd: ${name}`);
    }],
    ['DELETE', /^\/pd\/api\/v1\/members\/id\/([^/]+)$/, async (m, _q, res) => {
      const { cid } = await ctx.ready;
      if (!/^\d+$/.test(m[1])) return send(res, 400, `strconv.ParseUint: parsing "${m[1]}": invalid syntax`);
      const id = BigInt(m[1]);
      await deleteMemberInfo(ctx.etcd.gateway, cid, id);
      await ctx.etcd.gateway.call('/v3/cluster/member/remove', { ID: id.toString() });
      send(res, 200, `removed, pd: ${id}`);
    }],
    ['GET', /^\/pd\/api\/v1\/health$/, async (_m, _q, res) => send(res, 200, await health(ctx))],
    ['GET', /^\/pd\/api\/v1\/cluster$/, async (_m, _q, res) => {
      const { cid } = await ctx.ready;
      send(res, 200, { id: cid, max_peer_count: ctx.cfg.maxReplicas });
    }],
    ['GET', /^\/pd\/api\/v1\/stores$/, async (_m, _q, res) => {
      const { cid } = await ctx.ready;
      const stores = (await listStores(ctx.etcd.gateway, cid)).filter((s) => s.state !== 'Tombstone');
      const regions = await listRegions(ctx.etcd.gateway, cid);
      send(res, 200, { count: stores.length, stores: stores.map((s) => storeJson(s, ctx, regions)) });
    }],
    ['GET', /^\/pd\/api\/v1\/store\/(\d+)$/, async (m, _q, res) => {
      const { cid } = await ctx.ready;
      const s = await getStore(ctx.etcd.gateway, cid, Number(m[1]));
      if (!s) return send(res, 404, `[PD:core:ErrStoreNotFound]store id ${m[1]} not found`);
      send(res, 200, storeJson(s, ctx, await listRegions(ctx.etcd.gateway, cid)));
    }],
    ['DELETE', /^\/pd\/api\/v1\/store\/(\d+)$/, async (m, _q, res) => {
      const { cid } = await ctx.ready;
      const s = await getStore(ctx.etcd.gateway, cid, Number(m[1]));
      if (!s) return send(res, 404, `[PD:core:ErrStoreNotFound]store id ${m[1]} not found`);
      if (s.state === 'Up') await putStore(ctx.etcd.gateway, cid, { ...s, state: 'Offline' });
      send(res, 200, 'The store is set as Offline.');
    }],
    ['GET', /^\/pd\/api\/v1\/config$/, async (_m, _q, res) => send(res, 200, configJson(ctx, (await ctx.ready).cid))],
    ['GET', /^\/pd\/api\/v1\/config\/replicate$/, async (_m, _q, res) => send(res, 200, replicateJson(ctx))],
    // pd-ctl `config set max-replicas N`. Kept in this member's memory only (real PD persists it in etcd).
    ['POST', /^\/pd\/api\/v1\/config\/replicate$/, async (_m, req, res) => {
      let n: unknown;
      try {
        n = (JSON.parse(await readBody(req)) as Record<string, unknown>)['max-replicas'];
      } catch (e) {
        return send(res, 400, (e as Error).message);
      }
      if (n === undefined) return send(res, 200, 'The config is updated.');
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) return send(res, 400, '[PD:server:ErrInvalidValue]invalid max-replicas');
      ctx.cfg.maxReplicas = n;
      send(res, 200, 'The config is updated.');
    }],
    ['GET', /^\/pd\/api\/v1\/config\/schedule$/, async (_m, _q, res) => send(res, 200, configJson(ctx, 0n).schedule)],
    ['GET', /^\/pd\/api\/v1\/schedulers$/, async (_m, _q, res) => send(res, 200, await listSchedulers(ctx.etcd.gateway, (await ctx.ready).cid, ctx.version))],
    ['POST', /^\/pd\/api\/v1\/schedulers$/, async (_m, req, res) => {
      const { cid } = await ctx.ready;
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(await readBody(req)) as Record<string, unknown>;
      } catch (e) {
        return send(res, 400, (e as Error).message);
      }
      const a = await addScheduler(ctx.etcd.gateway, cid, input ?? {}, async (id) => {
        const s = await getStore(ctx.etcd.gateway, cid, id);
        return !!s && s.state !== 'Tombstone';
      });
      send(res, a.status, a.body);
    }],
    ['DELETE', /^\/pd\/api\/v1\/schedulers\/([^/]+)$/, async (m, _q, res) => {
      const a = await deleteScheduler(ctx.etcd.gateway, (await ctx.ready).cid, decodeURIComponent(m[1]));
      send(res, a.status, a.body);
    }],
    ['GET', /^\/pd\/api\/v1\/scheduler-config\/evict-leader-scheduler\/list$/, async (_m, _q, res) => {
      const conf = await evictLeaderConfig(ctx.etcd.gateway, (await ctx.ready).cid);
      if (!conf) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('scheduler not found\n');
        return;
      }
      send(res, 200, conf);
    }],
    ['GET', /^\/pd\/api\/v1\/regions$/, async (_m, _q, res) => {
      const regions = await listRegions(ctx.etcd.gateway, (await ctx.ready).cid);
      send(res, 200, { count: regions.length, regions: regions.map(regionJson) });
    }],
    ['GET', /^\/pd\/api\/v1\/region\/id\/(\d+)$/, async (m, _q, res) => {
      const r = (await listRegions(ctx.etcd.gateway, (await ctx.ready).cid)).find((x) => x.id === Number(m[1]));
      send(res, 200, r ? regionJson(r) : null);
    }],
    // Emulator-only stand-in for PD's gRPC Tso (see tso.ts): 503 on a follower or without a leader.
    ['POST', /^\/pd\/api\/v1\/emulator\/tso$/, async (_m, _q, res) => {
      const { cid, memberId } = await ctx.ready;
      tso ??= new TsoAllocator(ctx.etcd.gateway, `/pd/${cid}/timestamp`);
      try {
        send(res, 200, { timestamp: await tso.next(memberId) });
      } catch (e) {
        if (e instanceof NotLeaderError) return send(res, 503, `[PD:tso:ErrGenerateTimestamp]${e.message}`);
        throw e;
      }
    }],
    ['POST', /^\/pd\/api\/v1\/emulator\/store-heartbeat$/, async (_m, req, res) => {
      const { cid } = await ctx.ready;
      let body: Json;
      try {
        body = parseJsonLossless(await readBody(req));
      } catch (e) {
        return send(res, 400, (e as Error).message);
      }
      try {
        const rec = await storeHeartbeat(ctx.etcd.gateway, cid, body as Record<string, Json>);
        const answer: Record<string, unknown> = { cluster_id: cid, store_id: rec.id, state_name: stateName(rec, ctx.cfg.maxStoreDownTimeMs) };
        if (!isTiflash(rec)) Object.assign(answer, await regionDuties(ctx, cid, rec, (body as Record<string, Json>).region_leaders));
        send(res, 200, answer);
      } catch (e) {
        if (e instanceof StoreConflict) return send(res, e.status, e.message);
        throw e;
      }
    }],
  ];

  return (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (url.startsWith('/v3/')) return forwardToEtcd(ctx, req, res);
    // etcd's own /health on the client URL (embed serveClients: etcdhttp.HandleHealth; PD's client
    // port is its embedded etcd's): 200 {"health":"true"} with a leader, 503 without one.
    if (url === '/health') return forwardToEtcd(ctx, req, res);
    const failing = apiFailpoint();
    if (failing && url.startsWith('/pd/api/')) {
      ctx.log.warn('failpoint pd-api-unavailable: answering 500', { path: url, error: failing });
      req.resume();
      return send(res, 500, failing);
    }
    for (const [method, re, fn] of routes) {
      const m = re.exec(url);
      if (!m) continue;
      if (req.method !== method) continue;
      fn(m, req, res).catch((e: Error) => {
        ctx.log.warn('request failed', { path: url, error: e.message });
        if (!res.headersSent) send(res, e instanceof GatewayError ? 500 : 500, e.message);
      });
      return;
    }
    const known = routes.some(([, re]) => re.test(url));
    if (known) {
      res.writeHead(405);
      res.end('405 method not allowed\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('404 page not found\n');
  };
}
