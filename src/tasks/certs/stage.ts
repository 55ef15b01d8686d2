import * as path from 'path';
import { rewriteTlsConfig, tlsConfigFiles, tlsPaths } from '../../components';
import { applyPrometheusTls } from '../../components/prometheus';
import type { Action, Step } from '../../engine/step';
import { certMatchesKey, parseBundle } from '../../pki';
import { renderRunScript } from '../../render';
import type { Instance, Role } from '../../topology/types';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { unifiedDiff } from '../../util/diff';
import { executorFor, pdEndpoint, TlsContext } from '../context';
import { readRemoteText, writeWithBackup } from '../remote';

/** Roles that get a certificate (grafana and alertmanager do not talk to the cluster over TLS). */
export const CERT_ROLES = new Set<Role>(['pd', 'tikv', 'tidb', 'tiflash', 'cdc', 'pump', 'drainer', 'tiproxy', 'prometheus']);
/** Roles whose run script carries URLs or TLS flags (the others keep theirs untouched). */
const SCRIPT_ROLES = new Set<Role>(['pd', 'cdc', 'pump', 'drainer']);

/** Keys are never shown; certificates as what they say, not as base64; text files as a unified diff. */
function describeChange(inst: Instance, file: string, before: string | undefined, after: string, mode: number): string {
  const where = `${inst.host}:${file}`;
  if (mode === 0o600) return `+++ ${where} (private key, ${after.length} bytes, mode 0600, not shown)\n`;
  if (after.includes('-----BEGIN CERTIFICATE-----')) {
    const certs = parseBundle(after).map((c) => `CN=${c.subjectCN} issuer=${c.issuerCN} serial=${c.serialHex.slice(0, 16)}… until ${c.notAfter.toISOString().slice(0, 10)}${c.sans.dns.length + c.sans.ip.length ? ` SANs=${[...c.sans.dns, ...c.sans.ip].join(',')}` : ''}`);
    return `+++ ${where} (${before === undefined ? 'new' : 'replaced'} certificate: ${certs.join('; ')})\n`;
  }
  return unifiedDiff(before ?? '', after, where);
}

/** `user:group` that owns the deploy files. */
export const deployOwner = (ctx: Pick<TlsContext, 'user' | 'topology'>) => `${ctx.user}:${ctx.topology.global.group ?? ctx.user}`;

export function fileAction(ctx: TlsContext, inst: Instance, file: string, before: string | undefined, after: string, mode: number): Action {
  const rel = path.posix.relative(inst.deployDir, file);
  return {
    title: `${before === undefined ? 'create' : 'rewrite'} ${rel} of ${inst.id} on ${inst.host}`,
    diff: describeChange(inst, file, before, after, mode),
    run: async () => {
      const exec = await executorFor(ctx, inst);
      const owner = deployOwner(ctx);
      const dir = path.posix.dirname(file);
      // The key directory of encryption at rest is private; conf/, scripts/ and tls/ are TiUP's 0755.
      await writeWithBackup(exec, file, after, { deployDir: inst.deployDir, runId: ctx.runId, mode, owner, dir: { owner, mode: mode === 0o600 && path.posix.basename(dir) !== 'tls' ? 0o700 : 0o755 } });
    },
  };
}

/** The run script this instance should have for the wanted scheme. */
export function wantedRunScript(ctx: TlsContext, inst: Instance): string {
  const tls = ctx.want === 'on';
  if (inst.role === 'pd' && ctx.removedPds.includes(inst)) {
    // Started again by scale-out: an empty data dir joining the member we kept.
    return renderRunScript(inst, ctx.topology, { tls, pdMode: 'join', joinUrls: [`${tls ? 'https' : 'http'}://${pdEndpoint(ctx.keepPd!)}`] });
  }
  return renderRunScript(inst, ctx.topology, { tls, pdMode: 'initial' });
}

async function planInstance(ctx: TlsContext, inst: Instance): Promise<Action[]> {
  const exec = await executorFor(ctx, inst);
  const actions: Action[] = [];
  const on = ctx.want === 'on';
  if (on && CERT_ROLES.has(inst.role)) {
    const p = tlsPaths(inst);
    const ca = await readRemoteText(exec, p.ca);
    if (ca !== ctx.caBundlePem) actions.push(fileAction(ctx, inst, p.ca, ca, ctx.caBundlePem!, 0o644));
    const cert = await readRemoteText(exec, p.cert);
    const key = await readRemoteText(exec, p.key);
    const good = cert !== undefined && key !== undefined && ctx.leafStillGood!(inst, cert) && certMatchesKey(cert, key);
    if (!good) {
      const leaf = await ctx.issueLeaf!(inst, cert);
      actions.push(fileAction(ctx, inst, p.key, key, leaf.keyPem, 0o600));
      actions.push(fileAction(ctx, inst, p.cert, cert, leaf.certPem, 0o644));
    } else {
      // A good key with the wrong owner or mode: the component could not read it, or others could.
      const st = await exec.stat(p.key, { sudo: true });
      if ((st.mode & 0o777) !== 0o600 || st.owner !== ctx.user) {
        actions.push({ ...fileAction(ctx, inst, p.key, key, key!, 0o600), title: `fix owner/mode of ${path.posix.relative(inst.deployDir, p.key)} (was ${(st.mode & 0o777).toString(8)} ${st.owner}) of ${inst.id}` });
      }
    }
  }
  for (const file of tlsConfigFiles(inst)) {
    const text = (await readRemoteText(exec, file)) ?? '';
    // Only the TLS keys change; every other line stays byte-identical (TiFlash < v7.1 also moves http_port → https_port).
    const version = ctx.topology.componentVersions?.[inst.role] ?? ctx.topology.clusterVersion;
    const next = rewriteTlsConfig(inst, file, text, on ? { paths: tlsPaths(inst), allowedCn: ctx.allowedCn?.(inst) } : null, version);
    if (next !== text) actions.push(fileAction(ctx, inst, file, text, next, 0o644));
  }
  if (inst.role === 'prometheus') {
    const file = inst.configFiles.find((f) => f.endsWith('prometheus.yml'));
    const text = file ? await readRemoteText(exec, file) : undefined;
    if (file && text !== undefined) {
      const next = applyPrometheusTls(text, on ? tlsPaths(inst) : null, `${inst.host}:${file}`);
      if (next !== text) actions.push(fileAction(ctx, inst, file, text, next, 0o644));
    }
  }
  if (SCRIPT_ROLES.has(inst.role)) {
    const current = await readRemoteText(exec, inst.runScript);
    const wanted = wantedRunScript(ctx, inst);
    if (current !== wanted) actions.push(fileAction(ctx, inst, inst.runScript, current, wanted, 0o755));
  }
  return actions;
}

/**
 * Everything is put in place before the first restart, so the outage is only the restarts:
 * certificates, config security keys and run scripts, each file backed up and replaced atomically.
 */
export const stageStep: Step<TlsContext> = {
  id: 'stage',
  title: 'Stage certificates, configs and run scripts on every host (before any restart)',
  async decide(ctx) {
    const perInstance = await mapLimit(ctx.topology.instances, readConcurrency(ctx.opts), (inst) => planInstance(ctx, inst));
    // One action per instance, its files written in order (key, certificate, configs, script), so a
    // crash never leaves a config pointing at a file that is not there yet. Instances run in parallel.
    const actions: Action[] = ctx.topology.instances
      .map((inst, i) => ({ inst, files: perInstance[i] }))
      .filter(({ files }) => files.length > 0)
      .map(({ inst, files }) => ({
        title: `${inst.id} on ${inst.host}: ${files.map((f) => f.title.replace(/ of .*$/, '')).join(', ')}`,
        diff: files.map((f) => f.diff ?? '').filter(Boolean).join(''),
        run: async () => {
          for (const f of files) await f.run();
        },
      }));
    if (actions.length === 0) return { actions, reason: `every file already says TLS ${ctx.want}` };
    return { actions, concurrency: ctx.opts.concurrency };
  },
};
