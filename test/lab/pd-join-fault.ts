/**
 * A PD join that fails after its member was added (issue #13 item 2), on the lab: while tiseal
 * enables TLS, the data dir of the second PD (10.77.0.12) becomes a 1 MiB tmpfs once scale-in has
 * moved its data aside — a full disk. Its pd-server adds itself as a member and writes
 * `<data-dir>/join`, then the embedded etcd cannot create its WAL ("no space left on device") and
 * exits: PD has two voters and one running, no quorum. tiseal must end with one healthy PD (the
 * kept 10.77.0.11, restored with --force-new-cluster) and name 10.77.0.12; once the disk is fixed
 * a re-run finishes the scale-out. Checked with etcdctl and curl, not with tiseal.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { LabInfo } from '../../lab';
import { ssh, sshOk } from './helpers';
import { clusterDir, etcdctlMembers, pdJson, runTiseal, type RunResult } from './tiseal';

const KEPT = '10.77.0.11';
const FAILING = '10.77.0.12';
const DATA = '/tidb-data/pd-2379';

/** Run tiseal; `fn` once the journal shows `step` done. */
function runWhenStepDone(info: LabInfo, args: string[], step: string, fn: () => void): Promise<RunResult> {
  const journal = path.join(clusterDir(info), 'journal.jsonl');
  const from = fs.existsSync(journal) ? fs.statSync(journal).size : 0;
  let poll: NodeJS.Timeout | undefined;
  return runTiseal(info, args, {
    onSpawn: () => {
      poll = setInterval(() => {
        if (!fs.existsSync(journal)) return;
        const hit = fs.readFileSync(journal, 'utf8').slice(from).split('\n').some((l) => l.includes('"step-done"') && l.includes(`"step":"${step}"`));
        if (hit) {
          clearInterval(poll);
          fn();
        }
      }, 100);
    },
  }).finally(() => clearInterval(poll));
}

const unmount = (info: LabInfo) => ssh(info, FAILING, `if mountpoint -q ${DATA}; then sudo -n umount ${DATA}; fi`);

/** `tls enable <args>` through a failed join of the second PD, then the re-run that finishes it. */
export async function enableThroughFailedPdJoin(info: LabInfo, args: string[]): Promise<RunResult> {
  const enable = ['tls', 'enable', info.topologyFile, '--yes', '--keep-pd', `pd-${KEPT}-2379`, ...args];
  let planted = '';
  try {
    const failed = await runWhenStepDone(info, enable, 'scale-in', () => {
      planted = sshOk(info, FAILING, `sudo -n install -d -o tidb -g tidb -m 755 ${DATA} && sudo -n mount -t tmpfs -o size=1m,uid=1000,gid=1000,mode=0755 tmpfs ${DATA} && echo planted`);
    });
    expect(planted).toMatch(/planted/);
    expect(failed.code).toBe(1);
    const said = failed.stdout + failed.stderr;
    // The failing host is named, the recovery said plainly.
    expect(said).toMatch(new RegExp(`${FAILING.replace(/\./g, '\\.')} pd-2379\\.service: PD pd-${FAILING.replace(/\./g, '\\.')}-2379 failed to start after it was added as a member`));
    // What broke it, in its own log: the member was added, then etcd had no room for its WAL.
    expect(sshOk(info, FAILING, 'sudo -n grep -c "no space left on device" /tidb-deploy/pd-2379/log/pd.log || true').trim()).not.toBe('0');
    expect(said).toMatch(new RegExp(`restarted the kept PD pd-${KEPT.replace(/\./g, '\\.')}-2379 on ${KEPT.replace(/\./g, '\\.')} once with --force-new-cluster`));
    // PD is healthy again: one started member (etcd's own view), a leader, the run script restored.
    const members = etcdctlMembers(info, KEPT, 'https');
    expect(members).toHaveLength(1);
    expect(members[0]).toMatch(new RegExp(`, started, pd-${KEPT.replace(/\./g, '\\.')}-2379, https://`));
    expect(pdJson<{ name: string }>(info, KEPT, '/pd/api/v1/leader', 'https').name).toBe(`pd-${KEPT}-2379`);
    expect(sshOk(info, KEPT, 'cat /tidb-deploy/pd-2379/scripts/run_pd.sh')).not.toContain('force-new-cluster');
    // The failing PD is stopped, not crash-looping back into the old membership.
    expect(sshOk(info, FAILING, 'systemctl is-active pd-2379.service || true').trim()).toBe('inactive');
  } finally {
    unmount(info);
  }
  // The disk is fixed; the same command finishes the scale-out.
  const again = await runTiseal(info, enable);
  if (again.code !== 0) throw new Error(`re-run failed (${again.code}):\n${again.stdout.slice(-3000)}\n${again.stderr}`);
  const lines = etcdctlMembers(info, KEPT, 'https');
  expect(lines).toHaveLength(3);
  for (const l of lines) expect(l).toMatch(/, started, pd-10\.77\.0\.1[123]-2379, https:\/\//);
  return again;
}
