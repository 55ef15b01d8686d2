import { StepError } from '../../errors';
import type { EtcdMember } from '../../pd/client';
import type { Instance } from '../../topology/types';
import { waitFor } from '../../util/concurrency';
import { shq } from '../../util/shell';
import { executorFor, pdEndpoint, TlsContext } from '../context';
import { readRemoteText, systemctl, writeWithBackup } from '../remote';
import { deployOwner } from '../certs/stage';

/**
 * The way back when a join fails after its member was added to a one-member PD: etcd then has two
 * voters and one of them never runs, so there is no quorum — no leader, and not even the removal of
 * the new member can commit. PD's documented recovery of a surviving member (PD Recover guide,
 * "recover from a surviving PD node") is to start it once with `--force-new-cluster`: etcd rewrites
 * the membership to this member alone and keeps its data. Here nothing is lost: with two voters
 * every committed write needed both, so the kept PD has all of them (which is also why the guide's
 * `pd-recover --from-old-member` step, for a survivor that may lag behind, is not needed).
 */

/** The kept PD's run script with `--force-new-cluster` on the pd-server command line. */
export function withForceNewCluster(script: string): string | undefined {
  if (script.includes('--force-new-cluster')) return script;
  const lines = script.split('\n');
  const i = lines.findIndex((l) => /^\s*bin\/pd-server \\$/.test(l));
  if (i < 0) return undefined;
  const indent = /^\s*/.exec(lines[i])![0];
  lines.splice(i + 1, 0, `${indent}--force-new-cluster \\`);
  return lines.join('\n');
}

/** Does the kept PD have a leader? Asked a few times: losing it takes an election timeout. */
export async function keptHasLeader(ctx: TlsContext, keep: Instance, tries = 1): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    const r = await ctx.pd.members([pdEndpoint(keep)]).catch(() => undefined);
    if (r?.leader) return true;
    if (i < tries - 1) await new Promise((res) => setTimeout(res, 1000));
  }
  return false;
}

/**
 * Stop the member that never ran (so it cannot come back into the old membership), restart the
 * kept PD once with --force-new-cluster (run script backed up, then restored), and wait until it
 * is a one-member PD with a leader. Returns the plain-words account for the output.
 */
export async function recoverQuorum(ctx: TlsContext, keep: Instance, blocker: EtcdMember, failed: Instance | undefined): Promise<string> {
  const only = [pdEndpoint(keep)];
  if (failed) await (await executorFor(ctx, failed)).exec(`systemctl stop ${shq(failed.unit)}`, { sudo: true, allowFailure: true, timeoutMs: 120_000 });
  const exec = await executorFor(ctx, keep);
  const original = await readRemoteText(exec, keep.runScript);
  const forced = original === undefined ? undefined : withForceNewCluster(original);
  if (original === undefined || forced === undefined) {
    throw new StepError(`${keep.host}: ${keep.runScript} of the kept PD ${keep.name} is ${original === undefined ? 'missing' : 'not a run script tiseal knows (no "bin/pd-server \\" line)'}: cannot restart it with --force-new-cluster to restore PD's quorum`, {
      suggestion: `restore PD by hand: start pd-server on ${keep.host} once with --force-new-cluster (PD Recover guide), then remove it again and restart; then re-run`,
    });
  }
  const owner = deployOwner(ctx);
  try {
    await writeWithBackup(exec, keep.runScript, forced, { deployDir: keep.deployDir, runId: ctx.runId, mode: 0o755, owner });
    await systemctl(exec, 'restart', keep.unit);
    await waitFor(`PD ${keep.name} to come back as the only member, with a leader`, async () => {
      const ms = await ctx.pd.etcdMembers(only);
      return ms.length === 1 && ms[0].name === keep.name && (await keptHasLeader(ctx, keep));
    }, { timeoutMs: 90_000, intervalMs: 1000 });
  } finally {
    // Never left in place: any later restart would drop every other member again.
    await exec.put(original, keep.runScript, { mode: 0o755, owner, atomic: true, sudo: true });
  }
  await systemctl(exec, 'restart', keep.unit);
  await waitFor(`PD ${keep.name} to have a leader after the normal restart`, async () => (await ctx.pd.etcdMembers(only)).length === 1 && (await keptHasLeader(ctx, keep)), { timeoutMs: 90_000, intervalMs: 1000 });
  const who = failed ? `PD ${failed.name} on ${failed.host}` : `member ${blocker.id} (peer ${blocker.peerUrls.join(',')})`;
  return (
    `PD lost its quorum: ${who} was added as a member (2 voters) but never ran. tiseal restarted the kept PD ${keep.name} on ${keep.host} ` +
    `once with --force-new-cluster (PD's documented recovery of a surviving member), then normally again: PD is one healthy member with all its data ` +
    `(with two voters every committed write was on ${keep.name}), and ${who} is no longer a member`
  );
}
