import * as TOML from '@iarna/toml';
import * as path from 'path';
import { optionalTlsConfig, readTlsKeys, tlsConfigFiles, COMPONENTS } from '../components';
import { probeTls, ProbeResult } from '../net/probe';
import { prometheusTlsState } from '../components/prometheus';
import type { PdMember, PdStore } from '../pd/client';
import type { Instance } from '../topology/types';
import { mapLimit, waitFor, readConcurrency } from '../util/concurrency';
import { shq } from '../util/shell';
import { executorFor, TlsContext } from './context';
import type { ClusterFacts, HostFacts, InstanceFacts, TlsConfigState } from './cluster-facts';
import { readRemoteText, unitStates } from './remote';

const scriptHasTls = (role: string, script: string | undefined) => {
  if (!script) return undefined;
  if (role === 'pd') return /--client-urls="?https:/.test(script);
  if (role === 'cdc') return /--ca[= ]/.test(script);
  return undefined;
};

/** TLS state of one instance from its config files and run script. */
export async function readInstanceTlsConfig(ctx: Pick<TlsContext, 'pool'>, inst: Instance): Promise<TlsConfigState> {
  return (await readInstanceTls(ctx, inst)).state;
}

export async function readInstanceTls(ctx: Pick<TlsContext, 'pool'>, inst: Instance): Promise<{ state: TlsConfigState; allowedCn?: string[] }> {
  const state = await readInstanceTlsState(ctx, inst);
  const file = tlsConfigFiles(inst)[0];
  if (!file || state === 'off') return { state };
  const text = await readRemoteText(await executorFor(ctx, inst), file);
  const allowedCn = text ? readTlsKeys(inst.role, path.posix.basename(file), TOML.parse(text) as Record<string, unknown>).allowedCn : undefined;
  return { state, allowedCn };
}

async function readInstanceTlsState(ctx: Pick<TlsContext, 'pool'>, inst: Instance): Promise<TlsConfigState> {
  const exec = await executorFor(ctx, inst);
  const states: boolean[] = [];
  for (const file of tlsConfigFiles(inst)) {
    const text = await readRemoteText(exec, file);
    if (!text?.trim() && optionalTlsConfig(inst.role, path.posix.basename(file))) continue; // not deployed (ngmonitoring.toml)
    const doc = text ? (TOML.parse(text) as Record<string, unknown>) : {};
    const s = readTlsKeys(inst.role, path.posix.basename(file), doc).state;
    if (s === 'partial') return 'partial';
    states.push(s === 'on');
  }
  if (inst.role === 'prometheus') {
    const file = inst.configFiles.find((f) => f.endsWith('prometheus.yml'));
    const text = file ? await readRemoteText(exec, file) : undefined;
    if (text !== undefined) {
      const s = prometheusTlsState(text);
      if (s === 'partial') return 'partial';
      states.push(s === 'on');
    }
  }
  if (inst.role === 'pd' || inst.role === 'cdc') {
    const s = scriptHasTls(inst.role, await readRemoteText(exec, inst.runScript));
    if (s !== undefined) states.push(s);
  }
  if (states.length === 0) return 'off';
  return states.every(Boolean) ? 'on' : states.every((s) => !s) ? 'off' : 'partial';
}

/** The port used to tell whether an instance speaks TLS right now. */
export function livePort(inst: Instance): number | undefined {
  return COMPONENTS[inst.role].tlsPorts(inst)[0]?.port;
}

export async function probeInstance(ctx: Pick<TlsContext, 'clientTls'>, inst: Instance): Promise<ProbeResult | undefined> {
  const port = livePort(inst);
  if (!port) return undefined;
  return probeTls(inst.host, port, { ca: ctx.clientTls?.ca, cert: ctx.clientTls?.cert, key: ctx.clientTls?.key, timeoutMs: 3000 });
}

/** Read everything preflight and the planners need, in parallel per host. Read-only. */
export async function gatherFacts(ctx: TlsContext): Promise<ClusterFacts> {
  const { topology } = ctx;
  const hosts = new Map<string, HostFacts>();
  const instances = new Map<string, InstanceFacts>();
  await mapLimit(topology.hosts, readConcurrency(ctx.opts), async ({ host, sshPort }) => {
    const exec = await ctx.pool.get(host, sshPort);
    const here = topology.instances.filter((i) => (i.manageHost ?? i.host) === host);
    const sudo = (await exec.exec('true', { sudo: true, allowFailure: true })).code === 0;
    const t0 = Date.now();
    const clock = await exec.exec('date +%s.%N');
    const t1 = Date.now();
    const clockSkewSec = Number(clock.stdout.trim()) - (t0 + t1) / 2000;
    const dirs = [...new Set(here.map((i) => i.deployDir))];
    const df = await exec.exec(`for d in ${dirs.map(shq).join(' ')}; do p="$d"; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -Pk "$p" | tail -n 1 | awk -v d="$d" '{print d" "$4}'; done`, { allowFailure: true });
    const freeKb: Record<string, number> = {};
    for (const line of df.stdout.trim().split('\n')) {
      const [d, kb] = line.split(' ');
      if (d) freeKb[d] = Number(kb);
    }
    hosts.set(host, { host, sudo, clockSkewSec, freeKb });
    const units = await unitStates(exec, here.map((i) => i.unit));
    for (const inst of here) {
      const tls = sudo ? await readInstanceTls(ctx, inst) : { state: 'off' as const };
      instances.set(inst.id + '@' + inst.host, { unit: units.get(inst.unit), config: tls.state, allowedCn: tls.allowedCn });
    }
  });
  await mapLimit(topology.instances, 16, async (inst) => {
    const f = instances.get(inst.id + '@' + inst.host);
    if (f) f.live = await probeInstance(ctx, inst);
  });
  let members: PdMember[] = [];
  let leader: PdMember | undefined;
  let stores: PdStore[] = [];
  let pdVersion: string | undefined;
  try {
    // An interrupted run may have left PD restarting: give it a moment before judging.
    if (ctx.resuming) await waitFor('PD to answer', async () => (await ctx.pd.members()).members.length > 0, { timeoutMs: 45_000, intervalMs: 1000 }).catch(() => undefined);
    const m = await ctx.pd.members();
    members = m.members;
    leader = m.leader;
    stores = await ctx.pd.stores();
    pdVersion = (await ctx.pd.status()).version;
  } catch {
    /* reported by preflight as "PD not reachable" */
  }
  return { hosts, instances, members, leader, stores, pdVersion };
}

export const factKey = (inst: Instance) => inst.id + '@' + inst.host;
