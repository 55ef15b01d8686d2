import { COMPONENTS, tlsPaths } from '../../components';
import { StepError } from '../../errors';
import type { Action, Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { failHandshake, probeTls } from '../../net/probe';
import { parseCertificate } from '../../pki';
import type { Instance, Role } from '../../topology/types';
import { mapLimit, sleep, readConcurrency } from '../../util/concurrency';
import { executorFor, TlsContext } from '../context';
import { readRemoteText, systemctl } from '../remote';
import { CERT_ROLES, fileAction } from './stage';
import { waitHealthy } from '../restart/health';
import { restartStoreEvictingLeaders } from '../restart/evict-leaders';

/** Serial numbers compare without leading zeros (openssl, Node and forge differ there). */
const serialKey = (hex: string) => hex.toLowerCase().replace(/^0+/, '');

export interface RotateState {
  /** instance key → serial of the certificate pushed in this run */
  pushed: Map<string, string>;
}

const key = (inst: Instance) => `${inst.id}@${inst.host}`;

/**
 * Reissue every leaf from the same CA and replace key, then certificate, with the same names.
 * Components re-read them without a restart (TiKV and TiFlash when the certificate's mtime
 * changes, so the key must already be in place by then).
 */
export function reissueStep(state: RotateState): Step<TlsContext> {
  return {
    id: 'reissue',
    title: 'Reissue every certificate (same CA) and replace key and certificate in place',
    async decide(ctx) {
      const insts = ctx.topology.instances.filter((i) => CERT_ROLES.has(i.role));
      const planned = await mapLimit(insts, readConcurrency(ctx.opts), async (inst): Promise<Action | undefined> => {
        const exec = await executorFor(ctx, inst);
        const p = tlsPaths(inst);
        const cert = await readRemoteText(exec, p.cert);
        const keyPem = await readRemoteText(exec, p.key);
        if (cert === undefined || keyPem === undefined) {
          throw new StepError(`${inst.host}: ${p.cert} or its key is missing: TLS is not fully set up on ${inst.id}`, { suggestion: 'run `tiseal tls enable` first (it resumes and converges), then rotate' });
        }
        const leaf = await ctx.issueLeaf!(inst, cert);
        state.pushed.set(key(inst), serialKey(parseCertificate(leaf.certPem).serialHex));
        const writes = [fileAction(ctx, inst, p.key, keyPem, leaf.keyPem, 0o600), fileAction(ctx, inst, p.cert, cert, leaf.certPem, 0o644)];
        return {
          title: `${inst.id} on ${inst.host}: new ${inst.certName}.pem, then ${inst.certName}.crt (serial ${state.pushed.get(key(inst))!.slice(0, 12)}…)`,
          diff: writes.map((w) => w.diff ?? '').join(''),
          run: async () => {
            for (const w of writes) await w.run();
          },
        };
      });
      const actions = planned.filter((a): a is Action => a !== undefined);
      return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('no instance has a certificate');
    },
  };
}

/**
 * Ports that keep serving the old certificate until a TLS handshake on them FAILS: TiKV's status
 * server and the TiFlash proxy's (the same code). tikv v6.5–v8.5 src/server/status_server/mod.rs
 * tls_incoming: on `Err(_)` from the handshake it calls handle_ssl_error, which rebuilds the
 * acceptor when the cert file's mtime changed; a handshake that succeeds never reloads.
 */
export const RELOAD_AFTER_FAILED_HANDSHAKE: Partial<Record<Role, string[]>> = { tikv: ['status_port'], tiflash: ['flash_proxy_status_port'] };

interface Served {
  inst: Instance;
  name: string;
  port: number;
  serial?: string;
}

/**
 * Every TLS port of every instance serves the new serial. The gRPC ports and the Go components
 * reload on the next connection (the probe itself); TiKV and TiFlash status ports get one
 * deliberately failed handshake; only what still serves the old certificate is restarted.
 */
export function verifyServedStep(state: RotateState, opts: { reloadWaitMs?: number } = {}): Step<TlsContext> {
  const probe = async (ctx: TlsContext, inst: Instance, name: string, port: number): Promise<Served | undefined> => {
    const r = await probeTls(inst.host, port, { ca: ctx.clientTls?.ca, cert: ctx.clientTls?.cert, key: ctx.clientTls?.key });
    const got = r.peer ? serialKey(r.peer.serialHex) : undefined;
    return got === state.pushed.get(key(inst)) ? undefined : { inst, name, port, serial: got };
  };
  const stale = async (ctx: TlsContext, only?: Served[]): Promise<Served[]> => {
    const ports = only ?? ctx.topology.instances.filter((i) => state.pushed.has(key(i))).flatMap((inst) => COMPONENTS[inst.role].tlsPorts(inst).map(({ name, port }) => ({ inst, name, port })));
    const out = await mapLimit(ports, readConcurrency(ctx.opts), (p) => probe(ctx, p.inst, p.name, p.port));
    return out.filter((s): s is Served => s !== undefined);
  };
  const needsFailedHandshake = (s: Served) => RELOAD_AFTER_FAILED_HANDSHAKE[s.inst.role]?.includes(s.name) ?? false;
  const run = { acted: false, nudged: 0, restarted: 0 };
  return {
    id: 'verify-served',
    title: 'Verify every port serves its new certificate (no restarts)',
    async decide(ctx) {
      if (state.pushed.size === 0) return noop('nothing was reissued in this run');
      const left = await stale(ctx);
      if (left.length === 0) return noop(`all ${state.pushed.size} instances serve their new certificate; nothing restarted`);
      const byInst = new Map<string, Served[]>();
      for (const l of left) byInst.set(key(l.inst), [...(byInst.get(key(l.inst)) ?? []), l]);
      const actions: Action[] = [...byInst.values()].map((ports) => {
        const inst = ports[0].inst;
        const nudge = ports.filter(needsFailedHandshake);
        const lazy = ports.filter((p) => !needsFailedHandshake(p));
        const what = [
          ...(nudge.length ? [`make ${nudge.map((p) => `${p.name} ${p.port}`).join(', ')} reload with one deliberately failed TLS handshake (its status server reloads only then)`] : []),
          ...(lazy.length ? [`wait for port ${lazy.map((p) => p.port).join(',')} to reload`] : []),
        ];
        return {
          title: `${inst.id} on ${inst.host}: ${what.join('; ')}; restart ${inst.unit} only if it still serves its old certificate`,
          run: async () => {
            run.acted = true;
            const deadline = Date.now() + (opts.reloadWaitMs ?? 30_000);
            let still = ports;
            for (;;) {
              // Each round re-fails the handshake: a reload that found broken files is retried only after the next failure.
              for (const p of still.filter(needsFailedHandshake)) await failHandshake(inst.host, p.port);
              still = await stale(ctx, still);
              if (still.length === 0 || Date.now() >= deadline) break;
              await sleep(1000);
            }
            const reloaded = nudge.filter((p) => !still.some((s) => s.port === p.port));
            run.nudged += reloaded.length;
            if (still.length === 0) return reloaded.length ? `port ${reloaded.map((p) => p.port).join(',')} reloaded after a failed handshake; no restart` : 'reloaded; no restart';
            // TiKV/TiFlash: leaders evicted first, one store at a time even though these actions run in parallel.
            await restartStoreEvictingLeaders(ctx, inst, async () => {
              await systemctl(await executorFor(ctx, inst), 'restart', inst.unit);
              await waitHealthy(ctx, [inst], { tls: true });
            });
            run.restarted++;
            ctx.notes.push(`${inst.id} on ${inst.host} needed a restart to serve its new certificate (port ${still.map((p) => p.port).join(',')} kept serial ${still[0].serial ?? '(no TLS)'})`);
            return 'restarted';
          },
        };
      });
      return { actions, concurrency: ctx.opts.concurrency };
    },
    async verify(ctx) {
      const left = await stale(ctx);
      if (left.length) {
        throw new StepError(`${left[0].inst.host}:${left[0].port} (${left[0].inst.unit}) still serves serial ${left[0].serial ?? '(no TLS)'}`, { suggestion: 're-run `tiseal tls rotate` or restart that unit' });
      }
      if (!run.acted) return;
      const nudged = run.nudged ? `${run.nudged} TiKV/TiFlash status port(s) reloaded after a deliberately failed TLS handshake, which TiKV logs as "Status server error: TLS handshake error"` : '';
      ctx.notes.push(
        run.restarted
          ? `every port serves its new certificate; ${run.restarted} instance(s) had to be restarted${nudged ? `; ${nudged}` : ''}`
          : `every port serves its new certificate; nothing restarted${nudged ? ` (${nudged})` : ''}`,
      );
    },
  };
}
