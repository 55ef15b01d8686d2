/**
 * Two PD joins on the lab, one that must be recovered and one that must not.
 *
 * A PD join that fails after its member was added (issue #13 item 2): while tiseal
 * enables TLS, the data dir of the second PD (10.77.0.12) becomes a 1 MiB tmpfs once scale-in has
 * moved its data aside — a full disk. Its pd-server adds itself as a member and writes
 * `<data-dir>/join`, then the embedded etcd cannot create its WAL ("no space left on device") and
 * exits: PD has two voters and one running, no quorum. tiseal must end with one healthy PD (the
 * kept 10.77.0.11, restored with --force-new-cluster) and name 10.77.0.12; once the disk is fixed
 * a re-run finishes the scale-out. Checked with etcdctl and curl, not with tiseal. The forced PD
 * gets what `pd-recover --from-old-member` does: alloc_id raised by 100000000 (read with etcdctl).
 *
 * A healthy pair whose PD answers fail while the third PD joins (issue #23 item 1): in the re-run,
 * once the second PD is healthy, the kept PD's API answers HTTP 500 for 10 s (the emulator's
 * failpoint, as PD answers when its etcd calls time out; its etcd and its peers are fine). The
 * window covers tiseal's 5.5 s strict-reconfig pause and the third PD's pre-join checks. Before
 * issue #23, two failed API answers there made tiseal stop the healthy second PD and force the
 * kept one; now no member is stopped or restarted and the join completes.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { LabInfo } from '../../lab';
import { spawnSync } from 'child_process';
import { ssh, sshOk } from './helpers';
import { clusterDir, etcdctlMembers, pdJson, runTiseal, tlsFiles, type RunResult } from './tiseal';

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

/** A uint64 key as PD writes it (8 bytes, big-endian), read with etcdctl through `host`'s PD. */
function etcdU64(info: LabInfo, host: string, scheme: 'http' | 'https', key: string): bigint | undefined {
  const f = tlsFiles(info);
  const tls = scheme === 'https' ? ['--cacert', f.ca, '--cert', f.cert, '--key', f.key] : [];
  const r = spawnSync('etcdctl', ['--endpoints', `${scheme}://${host}:2379`, ...tls, '--dial-timeout', '5s', 'get', key, '-w', 'json'], { encoding: 'utf8', env: { ...process.env, ETCDCTL_API: '3' }, timeout: 20_000 });
  if (r.status !== 0) throw new Error(`etcdctl get ${key} via ${host}: ${r.stderr}`);
  const kvs = (JSON.parse(r.stdout) as { kvs?: Array<{ value: string }> }).kvs;
  return kvs?.length ? Buffer.from(kvs[0].value, 'base64').readBigUInt64BE(0) : undefined;
}

function allocId(info: LabInfo, scheme: 'http' | 'https'): bigint {
  const cid = etcdU64(info, KEPT, scheme, '/pd/cluster_id')!;
  return etcdU64(info, KEPT, scheme, `/pd/${cid}/alloc_id`) ?? 0n;
}

/** MainPID and start time of a unit: the same before and after means it was neither stopped nor restarted. */
const unitLife = (info: LabInfo, host: string) => sshOk(info, host, 'systemctl show -p MainPID -p ActiveEnterTimestamp pd-2379.service').trim();

const STALL_MS = 10_000;

/**
 * Run `args`; once PD reports the second PD healthy (tiseal polls that every 500 ms), wait 1 s and
 * make the kept PD's API fail for STALL_MS. Returns the run and the second PD's and the kept PD's
 * unit life as it was when the stall began.
 */
async function runStallingPdApi(info: LabInfo, args: string[]): Promise<{ run: RunResult; stalledAt?: { second: string; kept: string } }> {
  const f = tlsFiles(info);
  let poll: NodeJS.Timeout | undefined;
  let stalledAt: { second: string; kept: string } | undefined;
  let armed = false;
  const run = await runTiseal(info, args, {
    onSpawn: () => {
      poll = setInterval(() => {
        if (armed) return;
        const r = spawnSync('curl', ['-s', '--max-time', '2', '--cacert', f.ca, '--cert', f.cert, '--key', f.key, `https://${KEPT}:2379/pd/api/v1/health`], { encoding: 'utf8' });
        if (!r.stdout.includes(`"name": "pd-${FAILING}-2379"`) && !r.stdout.includes(`"name":"pd-${FAILING}-2379"`)) return;
        const second = (JSON.parse(r.stdout) as Array<{ name: string; health: boolean }>).find((m) => m.name === `pd-${FAILING}-2379`);
        if (!second?.health) return;
        armed = true;
        clearInterval(poll);
        setTimeout(() => {
          stalledAt = { second: unitLife(info, FAILING), kept: unitLife(info, KEPT) };
          sshOk(info, KEPT, `sudo -n install -d -m 755 /tidb-deploy/pd-2379/failpoint && echo ${Date.now() + STALL_MS} | sudo -n tee /tidb-deploy/pd-2379/failpoint/pd-api-unavailable-until >/dev/null`);
        }, 1000);
      }, 300);
    },
  }).finally(() => clearInterval(poll));
  return { run, stalledAt };
}

const unmount = (info: LabInfo) => ssh(info, FAILING, `if mountpoint -q ${DATA}; then sudo -n umount ${DATA}; fi`);

/** `tls enable <args>` through a failed join of the second PD, then the re-run that finishes it. */
export async function enableThroughFailedPdJoin(info: LabInfo, args: string[]): Promise<RunResult> {
  const enable = ['tls', 'enable', info.topologyFile, '--yes', '--keep-pd', `pd-${KEPT}-2379`, ...args];
  let planted = '';
  const allocBefore = allocId(info, 'http');
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
    // The forced start ran as a transient unit from root's copy in /run; both are gone, the normal unit runs.
    expect(sshOk(info, KEPT, 'systemctl is-active tiseal-force-pd-2379.service || true').trim()).not.toBe('active');
    expect(sshOk(info, KEPT, 'ls /run/tiseal 2>/dev/null || true').trim()).toBe('');
    expect(sshOk(info, KEPT, 'systemctl is-active pd-2379.service').trim()).toBe('active');
    expect(sshOk(info, KEPT, 'sudo -n journalctl -u tiseal-force-pd-2379.service --no-pager | grep -c pd-2379-force-new-cluster.sh || true').trim()).not.toBe('0');
    // pd-recover --from-old-member: the ID allocator moved up by its safe guard, never back.
    expect(allocId(info, 'https')).toBeGreaterThanOrEqual(allocBefore + 100_000_000n);
    expect(said).toMatch(/raised alloc_id from \d+ to \d+ as `pd-recover --from-old-member` does/);
    // The failing PD is stopped, not crash-looping back into the old membership.
    expect(sshOk(info, FAILING, 'systemctl is-active pd-2379.service || true').trim()).toBe('inactive');
  } finally {
    unmount(info);
  }
  // The disk is fixed; the same command finishes the scale-out, through a stall of PD's answers
  // while the third PD joins the healthy pair.
  const allocAfterRecovery = allocId(info, 'https');
  let again: RunResult;
  let stalledAt: { second: string; kept: string } | undefined;
  try {
    ({ run: again, stalledAt } = await runStallingPdApi(info, enable));
  } finally {
    ssh(info, KEPT, 'sudo -n rm -rf /tidb-deploy/pd-2379/failpoint');
  }
  if (again.code !== 0) throw new Error(`re-run failed (${again.code}):\n${again.stdout.slice(-3000)}\n${again.stderr}`);
  // The stall happened, the kept PD's API did fail, and neither PD of the pair was stopped or restarted.
  expect(stalledAt).toBeDefined();
  expect(sshOk(info, KEPT, 'grep -c "pd-api-unavailable\\|ErrEtcdKVGet" /tidb-deploy/pd-2379/log/pd.log || true').trim()).not.toBe('0');
  expect(unitLife(info, FAILING)).toBe(stalledAt!.second);
  expect(unitLife(info, KEPT)).toBe(stalledAt!.kept);
  expect(again.stdout + again.stderr).not.toMatch(/quorum restored|once with --force-new-cluster/);
  expect(allocId(info, 'https')).toBeGreaterThanOrEqual(allocAfterRecovery);
  const lines = etcdctlMembers(info, KEPT, 'https');
  expect(lines).toHaveLength(3);
  for (const l of lines) expect(l).toMatch(/, started, pd-10\.77\.0\.1[123]-2379, https:\/\//);
  return again;
}
