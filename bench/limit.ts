/**
 * The physical limit of a TLS switch, measured on the plaintext lab with the SQL tick prober
 * running: every instance restarted once, one at a time (`sudo systemctl restart <unit>` over ssh),
 * timed from outside from the stop issued to the SQL client being answered again through it:
 * - TiDB: the first tick that TiDB answered;
 * - PD, TiKV: the first answered tick once the instance serves again (PD: its own entry healthy in
 *   its /pd/api/v1/health; TiKV: its store Up in PD's /pd/api/v1/stores with a start time after
 *   the stop, and its status port answering);
 * - components off the SQL path (TiFlash, TiCDC, Prometheus …): the instance's port answering.
 * The PD leader is restarted last: stop issued → first answered tick is one leader election.
 * No TLS switch can beat the slowest single restart plus that election.
 */
import { spawn } from 'child_process';
import * as http from 'http';
import * as net from 'net';
import type { LabInfo } from '../lab';
import { restartTiers } from '../src/components';
import { loadTopology } from '../src/topology';
import type { Instance } from '../src/topology/types';
import { physicalLimit, type InstanceRestart, type LeaderElection, type PhysicalLimit } from './analysis';
import type { TickProberProcess } from './sql-tick-prober-process';
import { sleep } from '../src/util/concurrency';

export type { InstanceRestart, LeaderElection, PhysicalLimit };

const WAIT_MS = 120_000;

/** ssh as the lab user under the lab's known_hosts only; resolves with stdout, rejects naming the host. */
function ssh(info: LabInfo, inst: Instance, command: string): Promise<string> {
  const target = inst.manageHost ?? inst.host;
  return new Promise((resolve, reject) => {
    const args = ['-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${info.knownHostsFile}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=5', '-p', String(inst.sshPort), '-i', info.identityFile, `${info.user}@${target}`, command];
    const child = spawn('ssh', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.on('error', (e) => (clearTimeout(timer), reject(new Error(`${target}: ssh: ${e.message}`))));
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${target}: \`${command}\` exited ${code}: ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}

function httpGet(host: string, port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false, timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function portAnswers(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: 1000 });
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
    s.once('timeout', () => done(false));
  });
}

/** Poll `fn` every 50 ms until it is true; the time it first was. */
async function until(what: string, fn: () => Promise<boolean>): Promise<number> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    if (await fn().catch(() => false)) return Date.now();
    if (Date.now() > deadline) throw new Error(`limit: ${what} not within ${WAIT_MS / 1000} s`);
    await sleep(50);
  }
}

const pdOf = (i: Instance) => ({ host: i.host, port: i.ports.client_port });

async function pdJson<T>(pds: Instance[], path: string): Promise<T> {
  let last: unknown;
  for (const p of pds) {
    try {
      const r = await httpGet(pdOf(p).host, pdOf(p).port, path);
      if (r.status === 200) return JSON.parse(r.body) as T;
      last = new Error(`HTTP ${r.status}`);
    } catch (e) {
      last = e;
    }
  }
  throw new Error(`limit: no PD answered ${path}: ${(last as Error)?.message}`);
}

/** Restart the unit; the stop is issued at the host's clock (the lab's hosts share this machine's), so ssh's own handshake is not counted. */
async function restart(info: LabInfo, inst: Instance): Promise<{ stopIssuedAt: number; restartedAt: number }> {
  if (!/^[a-z][a-z0-9_-]*-\d+\.service$/.test(inst.unit)) throw new Error(`limit: ${inst.host}: unit name '${inst.unit}' is not <role>-<port>.service`);
  const out = await ssh(info, inst, `date +%s%N && exec sudo -n systemctl restart '${inst.unit}'`);
  const ns = /^(\d{13,})$/m.exec(out)?.[1];
  if (!ns) throw new Error(`limit: ${inst.host}: no timestamp from date: ${JSON.stringify(out.slice(0, 80))}`);
  return { stopIssuedAt: Math.floor(Number(BigInt(ns) / 1000000n)), restartedAt: Date.now() };
}

interface StoresJson {
  stores: Array<{ store: { address: string; state_name: string; start_timestamp?: number } }>;
}

/** When the instance serves again, as the brief of each component says (undefined: judged by the SQL tick only). */
async function servingAgain(inst: Instance, pds: Instance[], stopIssuedAt: number): Promise<number | undefined> {
  const label = `${inst.unit} on ${inst.host}`;
  if (inst.role === 'tidb') return undefined;
  if (inst.role === 'pd') {
    return until(`${label} healthy in its /pd/api/v1/health`, async () => {
      const r = await httpGet(inst.host, inst.ports.client_port, '/pd/api/v1/health');
      return r.status === 200 && (JSON.parse(r.body) as Array<{ name: string; health: boolean }>).some((m) => m.name === inst.name && m.health);
    });
  }
  if (inst.role === 'tikv') {
    const addr = `${inst.host}:${inst.port}`;
    return until(`${label}: store Up since the restart in PD, status port answering`, async () => {
      const j = await pdJson<StoresJson>(pds, '/pd/api/v1/stores');
      const s = j.stores.find((x) => x.store.address === addr)?.store;
      // A short restart never leaves Up in PD: the store's start time tells the new process apart.
      if (!s || s.state_name !== 'Up' || (s.start_timestamp ?? 0) < Math.floor(stopIssuedAt / 1000)) return false;
      return portAnswers(inst.host, inst.ports.status_port);
    });
  }
  const port = servingPort(inst);
  return until(`${label}: port ${port} answering`, () => portAnswers(inst.host, port));
}

/** The port that says an off-path component is back: TiFlash serves no tcp_port from v7.1, but always its flash service. */
function servingPort(inst: Instance): number {
  return inst.role === 'tiflash' ? inst.ports.flash_service_port : inst.port;
}

export async function measureLimit(o: { info: LabInfo; prober: TickProberProcess; log: (m: string) => void }): Promise<PhysicalLimit> {
  const topo = loadTopology(o.info.topologyFile);
  const pds = topo.instances.filter((i) => i.role === 'pd');
  const leaderName = (await pdJson<{ name: string }>(pds, '/pd/api/v1/leader')).name;
  const leader = pds.find((p) => p.name === leaderName);
  if (!leader) throw new Error(`limit: PD leader '${leaderName}' is not in ${o.info.topologyFile}`);
  const order = restartTiers(topo.instances).flatMap((t) => t.instances).filter((i) => i !== leader);
  const restarts: InstanceRestart[] = [];
  let election: LeaderElection | undefined;
  for (const inst of [...order, leader]) {
    await o.prober.answering(10, WAIT_MS);
    const isLeader = inst === leader;
    o.log(`limit: restart ${inst.unit} on ${inst.host}${isLeader ? ' (PD leader: one election)' : ''}`);
    const { stopIssuedAt, restartedAt } = await restart(o.info, inst);
    const servingAt = await servingAgain(inst, pds, stopIssuedAt);
    const sqlPath = inst.role === 'tidb' || inst.role === 'pd' || inst.role === 'tikv';
    let answeredAt: number | undefined;
    if (inst.role === 'tidb') {
      const backend = `${inst.host}:${inst.port}`;
      answeredAt = (await o.prober.waitTick(`answered by ${backend}`, restartedAt, (t) => t.backends.some((b) => b.backend === backend && b.ok), WAIT_MS)).at;
    } else if (sqlPath) {
      answeredAt = (await o.prober.waitTick(`answered after ${inst.unit} on ${inst.host} serves again`, servingAt!, (t) => t.answered, WAIT_MS)).at;
    }
    if (isLeader) {
      // The old leader's process is gone once systemctl returns: the first answered tick after that needed a new leader.
      const first = await o.prober.waitTick('answered after the PD leader stopped', restartedAt, (t) => t.answered, WAIT_MS);
      election = { pd: inst.name ?? inst.unit, host: inst.host, stopIssuedAt, answeredAt: first.at, ms: first.at - stopIssuedAt };
    }
    const end = answeredAt ?? servingAt!;
    restarts.push({ role: inst.role, host: inst.host, unit: inst.unit, judged: inst.role === 'tidb' ? 'sql' : sqlPath ? 'serving+sql' : 'port', stopIssuedAt, restartedAt, servingAt, answeredAt, ms: end - stopIssuedAt, ...(isLeader ? { pdLeader: true } : {}) });
  }
  await o.prober.answering(10, WAIT_MS);
  return physicalLimit(restarts, election!);
}
