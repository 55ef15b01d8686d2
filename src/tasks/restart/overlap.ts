import * as net from 'net';
import { restartTiers } from '../../components';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { StepError } from '../../errors';
import type { Instance } from '../../topology/types';
import { sleep } from '../../util/concurrency';
import { runStats } from '../../util/run-stats';
import { executorFor, TlsContext } from '../context';
import { waitHealthy } from './health';
import { systemctl } from '../remote';
import { kept, restartReason } from './schedules';

/**
 * The default schedule (`--schedule overlap`). Once PD changes scheme nothing serves SQL anyway (a
 * TiDB on the old scheme gets no timestamp from PD), so restarting tier after tier only adds the
 * tiers' times up. Instead: stop everything that must restart at once, start PD, and start all the
 * others as soon as PD's client port listens; each component's own PD client retries until PD has
 * a leader (TiKV, TiDB, TiFlash, TiCDC all do), so the outage is about the slowest single restart
 * instead of the sum. As with TiUP's stop-all, nothing is started before everything is stopped, so
 * no component ever talks to a peer on the other scheme. The tier steps that follow find nothing to
 * do, unless a resume needs them; a resume re-decides from the hosts (stopped units just start).
 */
const PD_LISTEN_POLL_MS = 50;
const PD_LISTEN_TIMEOUT_MS = 120_000;

export function overlapRestartStep(): Step<TlsContext> {
  return {
    id: 'restart-overlap',
    title: 'Restart every component at once: stop all, start PD, start the rest as soon as PD listens (schedule overlap)',
    async decide(c: TlsContext) {
      const all = kept(c, restartTiers(c.topology.instances).flatMap((t) => t.roles));
      const reasons = await Promise.all(all.map(async (i) => [i, await restartReason(c, i)] as const));
      const todo = reasons.flatMap(([inst, r]) => (r ? [{ inst, why: r.why, running: r.running }] : []));
      if (todo.length === 0) return noop(`every component already runs with TLS ${c.want}`);
      const pds = todo.filter((t) => t.inst.role === 'pd').map((t) => t.inst);
      const rest = todo.filter((t) => t.inst.role !== 'pd').map((t) => t.inst);
      const running = todo.filter((t) => t.running).map((t) => t.inst);
      const list = (xs: Instance[]) => xs.map((i) => `${i.unit}@${i.host}`).join(', ');
      return {
        actions: [
          ...(running.length ? [{ title: `stop ${list(running)} (all at once)`, run: () => stopAll(c, running) }] : []),
          ...(pds.length ? [{ title: `start ${list(pds)} and wait until its client port listens`, run: () => startPds(c, pds) }] : []),
          ...(rest.length ? [{ title: `start ${list(rest)} (all at once)`, run: () => startAll(c, rest, 'overlap') }] : []),
        ],
      };
    },
    async verify(c: TlsContext) {
      const all = kept(c, restartTiers(c.topology.instances).flatMap((t) => t.roles));
      await waitHealthy(c, all, { tls: c.want === 'on' });
    },
  };
}

async function stopAll(c: TlsContext, insts: Instance[]): Promise<void> {
  await Promise.all(
    insts.map(async (inst) => {
      runStats.stopIssued(inst);
      await systemctl(await executorFor(c, inst), 'stop', inst.unit);
      runStats.stopped(inst);
    }),
  );
}

async function startAll(c: TlsContext, insts: Instance[], tier: string): Promise<void> {
  await Promise.all(
    insts.map(async (inst) => {
      runStats.restartIssued(inst, tier);
      await systemctl(await executorFor(c, inst), 'start', inst.unit);
    }),
  );
}

async function startPds(c: TlsContext, pds: Instance[]): Promise<string> {
  const t0 = Date.now();
  await startAll(c, pds, 'overlap');
  await Promise.all(pds.map((pd) => waitListening(pd.host, pd.ports.client_port, PD_LISTEN_TIMEOUT_MS)));
  return `listening after ${((Date.now() - t0) / 1000).toFixed(1)} s`;
}

/** A TCP connect to host:port succeeds (the process listens; it may not serve yet). */
export async function waitListening(host: string, port: number, timeoutMs: number, pollMs = PD_LISTEN_POLL_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      await connectOnce(host, port, 1000);
      return;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new StepError(`${host}:${port} does not listen ${Math.round(timeoutMs / 1000)} s after its start: ${last}`, {
        suggestion: `look at the unit on ${host} (journalctl) and re-run the same command to resume`,
      });
    }
    await sleep(pollMs);
  }
}

function connectOnce(host: string, port: number, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    const done = (e?: Error) => {
      s.destroy();
      if (e) reject(e);
      else resolve();
    };
    s.setTimeout(timeoutMs, () => done(new Error('connect timed out')));
    s.once('connect', () => done());
    s.once('error', (e) => done(e));
  });
}
