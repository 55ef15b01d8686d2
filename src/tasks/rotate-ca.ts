import * as fs from 'fs';
import * as path from 'path';
import { restartTiers, tlsPaths } from '../components';
import type { Action, Step } from '../engine/step';
import { noop } from '../engine/step';
import { CertificateAuthority, CertStore, createCA, issueLeaf, parseCertificate, verifyChain } from '../pki';
import type { Instance } from '../topology/types';
import { mapLimit } from '../util/concurrency';
import { shq } from '../util/shell';
import { TISEAL_CLIENT_CN, instanceSans, parseExtraSans } from './certificates';
import { executorFor, TlsContext } from './context';
import { waitHealthy } from './health';
import { readRemoteText, systemctl, unitStates } from './remote';
import { RotateState } from './rotate';
import { CERT_ROLES, fileAction } from './stage';

/**
 * Moving a cluster to a new CA without an outage. Components load their CA once at start, so the
 * order is: trust both CAs (rolling restart), reissue every leaf from the new CA (reloaded without
 * restarts), trust only the new CA (rolling restart), then make the new CA the cluster's CA here.
 * Every step decides from what the hosts hold, so re-running `tls rotate --ca` resumes.
 */
export interface CaRotation {
  current: CertStore;
  next: CertStore;
  oldCa?: CertificateAuthority;
  newCa?: CertificateAuthority;
}

const certInstances = (ctx: TlsContext) => ctx.topology.instances.filter((i) => CERT_ROLES.has(i.role));
const both = (r: CaRotation) => r.oldCa!.bundlePem + r.newCa!.bundlePem;

export function nextCaStep(r: CaRotation): Step<TlsContext> {
  return {
    id: 'next-ca',
    title: 'The new CA (kept on this machine, next to the current one)',
    async decide(ctx) {
      r.oldCa = r.current.loadCA({ allowExpired: true });
      let save: Action | undefined;
      if (r.next.hasCA()) {
        r.newCa = r.next.loadCA();
      } else {
        const cn = `tiseal CA ${ctx.cluster.name} ${new Date().toISOString().slice(0, 10)}`;
        r.newCa = await createCA({ commonName: cn === r.oldCa.info.subjectCN ? `${cn} (2)` : cn, days: ctx.flags.caDays, keyType: ctx.flags.keyType });
        const ca = r.newCa;
        save = { title: `create the new CA "${ca.info.subjectCN}" in ${r.next.dir} (its key stays on this machine)`, run: () => r.next.saveCA(ca) };
      }
      const extra = parseExtraSans(ctx.flags.extraSan);
      const newCa = r.newCa;
      ctx.issueLeaf = async (inst) => {
        const l = await issueLeaf(newCa, { commonName: inst.certName, hosts: instanceSans(inst, extra), days: ctx.flags.certDays, keyType: ctx.flags.keyType });
        return { certPem: l.fullChainPem, keyPem: l.keyPem };
      };
      // During the move tiseal must accept servers on either CA.
      ctx.clientTls = { ...ctx.clientTls!, ca: both(r) };
      ctx.pd.setTls(ctx.clientTls);
      return save ? { actions: [save] } : noop(`continuing the move to "${r.newCa.info.subjectCN}" from ${r.next.dir}`);
    },
  };
}

/** Push `ca.crt` = `bundle(r)` to every instance that does not hold it (or a later stage's bundle). */
function pushBundleStep(id: string, title: string, bundle: (r: CaRotation) => string, done: (r: CaRotation) => string[], r: CaRotation): Step<TlsContext> {
  return {
    id,
    title,
    async decide(ctx) {
      const want = bundle(r);
      const planned = await mapLimit(certInstances(ctx), ctx.opts.concurrency, async (inst) => {
        const p = tlsPaths(inst);
        const have = await readRemoteText(await executorFor(ctx, inst), p.ca);
        return have === want || done(r).includes(have ?? '') ? undefined : fileAction(ctx, inst, p.ca, have, want, 0o644);
      });
      const actions = planned.filter((a): a is Action => a !== undefined);
      return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('every host already holds it');
    },
  };
}

/** Restart, one instance at a time in tier order, whatever started before its ca.crt changed. */
function rollingRestartStep(id: string, title: string): Step<TlsContext> {
  return {
    id,
    title,
    async decide(ctx) {
      const ordered = restartTiers(certInstances(ctx)).flatMap((t) => t.instances);
      const stale = await mapLimit(ordered, ctx.opts.concurrency, async (inst): Promise<Instance | undefined> => {
        const exec = await executorFor(ctx, inst);
        const unit = (await unitStates(exec, [inst.unit])).get(inst.unit);
        const mtime = Number((await exec.exec(`stat -c %Y ${shq(tlsPaths(inst).ca)}`, { sudo: true })).stdout.trim()) * 1e6;
        return !unit || unit.activeState !== 'active' || unit.activeEnterUs < mtime ? inst : undefined;
      });
      const todo = stale.filter((i): i is Instance => i !== undefined);
      if (todo.length === 0) return noop('every instance started after its CA bundle changed');
      return {
        concurrency: 1,
        actions: todo.map((inst) => ({
          title: `restart ${inst.unit} on ${inst.host} and wait until it is healthy (the CA is read at start)`,
          run: async () => {
            await systemctl(await executorFor(ctx, inst), 'restart', inst.unit);
            await waitHealthy(ctx, [inst], { tls: true });
          },
        })),
      };
    },
  };
}

export function trustBothSteps(r: CaRotation): Step<TlsContext>[] {
  return [
    pushBundleStep('trust-both', 'Trust both CAs: ca.crt = current + new CA on every host', both, (x) => [x.newCa!.bundlePem], r),
    rollingRestartStep('restart-trust-both', 'Rolling restart so every component trusts both CAs'),
  ];
}

/** Reissue leaves (and tiseal's client certificate) from the new CA where the host's leaf is still from the old one. */
export function reissueFromNewCaStep(r: CaRotation, state: RotateState): Step<TlsContext> {
  return {
    id: 'reissue-new-ca',
    title: 'Reissue every certificate from the new CA (picked up without restarts)',
    async decide(ctx) {
      const actions: Action[] = [];
      const client = r.next.loadClient();
      if (!client || !verifyChain(client.certPem, r.newCa!.bundlePem).ok) {
        const issued = await issueLeaf(r.newCa!, { commonName: TISEAL_CLIENT_CN, usage: 'client', days: ctx.flags.certDays, keyType: ctx.flags.keyType });
        actions.push({ title: `issue tiseal's client certificate from the new CA into ${r.next.dir}`, run: () => r.next.saveClient({ certPem: issued.certPem, keyPem: issued.keyPem }) });
        ctx.clientTls = { ca: both(r), cert: issued.certPem, key: issued.keyPem };
      } else {
        ctx.clientTls = { ca: both(r), cert: client.certPem, key: client.keyPem };
      }
      ctx.pd.setTls(ctx.clientTls);
      const planned = await mapLimit(certInstances(ctx), ctx.opts.concurrency, async (inst): Promise<Action | undefined> => {
        const exec = await executorFor(ctx, inst);
        const p = tlsPaths(inst);
        const cert = await readRemoteText(exec, p.cert);
        if (cert && verifyChain(cert, r.newCa!.bundlePem).ok) return undefined;
        const key = await readRemoteText(exec, p.key);
        const leaf = await ctx.issueLeaf!(inst);
        state.pushed.set(`${inst.id}@${inst.host}`, parseCertificate(leaf.certPem).serialHex.toLowerCase().replace(/^0+/, ''));
        const writes = [fileAction(ctx, inst, p.key, key, leaf.keyPem, 0o600), fileAction(ctx, inst, p.cert, cert, leaf.certPem, 0o644)];
        return { title: `${inst.id} on ${inst.host}: key and certificate from the new CA`, diff: writes.map((w) => w.diff ?? '').join(''), run: async () => { for (const w of writes) await w.run(); } };
      });
      actions.push(...planned.filter((a): a is Action => a !== undefined));
      return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('every certificate is already from the new CA');
    },
  };
}

export function trustNewOnlySteps(r: CaRotation): Step<TlsContext>[] {
  return [
    pushBundleStep('trust-new', 'Trust only the new CA: ca.crt = new CA on every host', (x) => x.newCa!.bundlePem, () => [], r),
    rollingRestartStep('restart-trust-new', 'Rolling restart so no component trusts the old CA any more'),
  ];
}

/** Locally: the new CA becomes the cluster's CA; the old one is kept aside, never deleted. */
export function promoteStep(r: CaRotation): Step<TlsContext> {
  return {
    id: 'promote-ca',
    title: 'Make the new CA the cluster CA on this machine (the old one is kept aside)',
    async decide(ctx) {
      const retired = path.join(path.dirname(r.current.dir), `tls-retired-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`);
      return {
        actions: [
          {
            title: `move ${r.current.dir} to ${retired} and ${r.next.dir} to ${r.current.dir}`,
            run: async () => {
              fs.renameSync(r.current.dir, retired);
              fs.renameSync(r.next.dir, r.current.dir);
              ctx.notes.push(`the old CA is kept in ${retired} (delete it once nothing needs it)`);
            },
          },
        ],
      };
    },
  };
}
