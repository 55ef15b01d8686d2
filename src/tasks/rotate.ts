import { COMPONENTS, tlsPaths } from '../components';
import { StepError } from '../errors';
import type { Action, Step } from '../engine/step';
import { noop } from '../engine/step';
import { probeTls } from '../net/probe';
import { parseCertificate } from '../pki';
import type { Instance } from '../topology/types';
import { mapLimit, sleep } from '../util/concurrency';
import { executorFor, TlsContext } from './context';
import { readRemoteText, systemctl } from './remote';
import { CERT_ROLES, fileAction } from './stage';
import { waitHealthy } from './health';

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
      const planned = await mapLimit(insts, ctx.opts.concurrency, async (inst): Promise<Action | undefined> => {
        const exec = await executorFor(ctx, inst);
        const p = tlsPaths(inst);
        const cert = await readRemoteText(exec, p.cert);
        const keyPem = await readRemoteText(exec, p.key);
        if (cert === undefined || keyPem === undefined) {
          throw new StepError(`${inst.host}: ${p.cert} or its key is missing: TLS is not fully set up on ${inst.id}`, { suggestion: 'run `tiseal tls enable` first (it resumes and converges), then rotate' });
        }
        const leaf = await ctx.issueLeaf!(inst);
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

/** Every TLS port of every instance serves the new serial; restart only what cannot reload. */
export function verifyServedStep(state: RotateState, opts: { reloadWaitMs?: number } = {}): Step<TlsContext> {
  const stale = async (ctx: TlsContext): Promise<Array<{ inst: Instance; port: number; serial?: string }>> => {
    const out: Array<{ inst: Instance; port: number; serial?: string }> = [];
    for (const inst of ctx.topology.instances) {
      const want = state.pushed.get(key(inst));
      if (!want) continue;
      for (const { port } of COMPONENTS[inst.role].tlsPorts(inst)) {
        const r = await probeTls(inst.host, port, { ca: ctx.clientTls?.ca, cert: ctx.clientTls?.cert, key: ctx.clientTls?.key });
        const got = r.peer ? serialKey(r.peer.serialHex) : undefined;
        if (got !== want) out.push({ inst, port, serial: got });
      }
    }
    return out;
  };
  return {
    id: 'verify-served',
    title: 'Verify every port serves its new certificate (no restarts)',
    async decide(ctx) {
      if (state.pushed.size === 0) return noop('nothing was reissued in this run');
      // Reloads are lazy (next handshake, or the next mtime check): give them a moment.
      const deadline = Date.now() + (opts.reloadWaitMs ?? 30_000);
      let left = await stale(ctx);
      while (left.length > 0 && Date.now() < deadline) {
        await sleep(1000);
        left = await stale(ctx);
      }
      if (left.length === 0) return noop(`all ${state.pushed.size} instances serve their new certificate; nothing restarted`);
      const insts = [...new Map(left.map((l) => [key(l.inst), l.inst])).values()];
      return {
        actions: insts.map((inst) => ({
          title: `restart ${inst.unit} on ${inst.host}: it did not pick up its new certificate by itself (port ${left.filter((l) => l.inst === inst).map((l) => l.port).join(',')})`,
          run: async () => {
            await systemctl(await executorFor(ctx, inst), 'restart', inst.unit);
            await waitHealthy(ctx, [inst], { tls: true });
            ctx.notes.push(`${inst.id} on ${inst.host} needed a restart to serve its new certificate`);
          },
        })),
      };
    },
    async verify(ctx) {
      const left = await stale(ctx);
      if (left.length) {
        throw new StepError(`${left[0].inst.host}:${left[0].port} (${left[0].inst.unit}) still serves serial ${left[0].serial ?? '(no TLS)'}`, { suggestion: 're-run `tiseal tls rotate` or restart that unit' });
      }
    },
  };
}
