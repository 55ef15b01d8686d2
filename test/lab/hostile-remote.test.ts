/**
 * A hostile deploy user on a host: `tidb` (who owns the deploy dirs) plants symlinks to root-owned
 * files and dirs where tiseal writes as root, and a hostile path reaches the root-side log tail.
 * tiseal must refuse with a one-line error naming host and path, before any change, and no
 * root-owned file may change owner, mode or content (stat + sha256 before and after, taken with
 * the system ssh client). The lab is left as found: links removed, cluster plaintext.
 */
import { labReset, LabInfo } from '../../lab';
import { SshPool } from '../../src/ssh';
import { logTail } from '../../src/tasks/remote';
import { shq } from '../../src/util/shell';
import { describeLab, ensureLab, pdMembers, ssh, sshOk } from './helpers';
import { remoteChecksums, runTiseal } from './tiseal';

jest.setTimeout(10 * 60_000);

const HOST = '10.77.0.11';
const DEPLOY = '/tidb-deploy/pd-2379';
const CANARY = '/root/tiseal-canary';

/** Owner, mode, size and sha256 of the root-owned files a planted link points at. */
function rootFiles(info: LabInfo): string {
  return sshOk(info, HOST, `sudo -n sh -c 'stat -c "%n %U:%G %a %s" /etc/ssh /etc/ssh/* /root /root/* ${CANARY} && find /etc/ssh -type f -exec sha256sum {} + && sha256sum ${CANARY}'`);
}

async function pdMemberCount(): Promise<number> {
  return (await pdMembers(HOST)).names.length;
}

/** What the deploy user does to `where` (as tidb, no sudo), and how to undo it. */
const PLANTS: Record<string, { plant: string; undo: string }> = {
  conf: { plant: `mv ${DEPLOY}/conf ${DEPLOY}/conf.real && ln -s /etc/ssh ${DEPLOY}/conf`, undo: `rm -f ${DEPLOY}/conf && mv ${DEPLOY}/conf.real ${DEPLOY}/conf` },
  tls: { plant: `ln -s /etc/ssh ${DEPLOY}/tls`, undo: `rm -f ${DEPLOY}/tls` },
  scripts: { plant: `mv ${DEPLOY}/scripts ${DEPLOY}/scripts.real && ln -s /etc/ssh ${DEPLOY}/scripts`, undo: `rm -f ${DEPLOY}/scripts && mv ${DEPLOY}/scripts.real ${DEPLOY}/scripts` },
  backup: { plant: `ln -s /root ${DEPLOY}/backup`, undo: `rm -f ${DEPLOY}/backup` },
};

describeLab('a hostile deploy user on the hosts', () => {
  let info: LabInfo;
  let checksums: string;
  const undoAll = () => {
    for (const p of Object.values(PLANTS)) ssh(info, HOST, `[ -L ${p.undo.split(' ')[2]} ] && { ${p.undo}; }; true`);
  };

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
    sshOk(info, HOST, `echo 'root only' | sudo -n tee ${CANARY} >/dev/null && sudo -n chmod 600 ${CANARY}`);
    // the deploy user really owns the deploy dir (what makes the attack possible)
    expect(sshOk(info, HOST, `stat -c %U ${DEPLOY} ${DEPLOY}/conf`).trim().split('\n')).toEqual(['tidb', 'tidb']);
    checksums = remoteChecksums(info);
  }, 15 * 60_000);

  afterAll(async () => {
    if (!info) return;
    undoAll();
    ssh(info, HOST, `sudo -n rm -f ${CANARY}`);
    // Other lab tests expect the plaintext cluster as deployed: reset if anything differs.
    if (remoteChecksums(info) !== checksums || (await pdMemberCount().catch(() => 0)) !== 3) await labReset();
  }, 15 * 60_000);

  it.each(Object.keys(PLANTS))('a symlink as %s/ to a root-owned dir: tls enable refuses in one line naming host and path; nothing changed', async (where) => {
    const before = rootFiles(info);
    sshOk(info, HOST, PLANTS[where].plant);
    try {
      expect(sshOk(info, HOST, `stat -c %U ${DEPLOY}/${where}`).trim()).toBe('tidb'); // planted by the deploy user, not root
      const r = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes']);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      const at = lines.findIndex((l) => l.startsWith('error: '));
      expect(lines[at]).toBe(`error: ${HOST}: refusing ${DEPLOY}/${where}: is a symlink (tiseal runs as root and never follows a path another user controls)`);
      expect(lines[at + 1]).toMatch(new RegExp(`^  suggestion: replace ${DEPLOY}/${where} with a real file or directory`));
      expect(r.stderr).toMatch(/Preflight.*FAILED/); // refused before the first change
      expect(r.stderr).not.toMatch(/bug in tiseal/);
      expect(rootFiles(info)).toBe(before);
      expect(await pdMemberCount()).toBe(3); // refused in preflight: PD was not scaled in
    } finally {
      sshOk(info, HOST, PLANTS[where].undo);
    }
    expect(remoteChecksums(info)).toBe(checksums);
  });

  it('enable replaces a world-readable stale key: its backup is 0600 in root 0700 dirs and deleted once verified; disable --clean-certificate leaves no key', async () => {
    // A stale key left 0644 by hand: enable must replace it (it matches no certificate) and back it up.
    sshOk(info, HOST, `mkdir -p ${DEPLOY}/tls && head -c 48 /dev/urandom | base64 > ${DEPLOY}/tls/pd.pem && chmod 644 ${DEPLOY}/tls/pd.pem`);
    const stale = sshOk(info, HOST, `sha256sum < ${DEPLOY}/tls/pd.pem`).trim();
    const on = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes']);
    if (on.code !== 0) throw new Error(`enable failed (${on.code}):\n${on.stdout.slice(-3000)}\n${on.stderr}`);
    expect(on.stdout).toMatch(new RegExp(`note: deleted 1 backed-up private key of this run on ${HOST.replace(/\./g, '\\.')} \\(the run is verified\\)`));
    const hosts = ['10.77.0.11', '10.77.0.12', '10.77.0.13'];
    for (const h of hosts) {
      // backup dirs root-only; no private key in any backup; the config backups are there
      const dirs = sshOk(info, h, "sudo -n find /tidb-deploy -path '*/backup*' -type d -printf '%u %m %p\\n'").trim().split('\n').filter(Boolean);
      expect(dirs.length).toBeGreaterThan(0);
      for (const d of dirs) expect(d).toMatch(/^root 700 /);
      expect(sshOk(info, h, "sudo -n find /tidb-deploy -path '*/backup/*' -name '*.pem' -o -path '*/backup/*' -name '*.key'").trim()).toBe('');
      expect(sshOk(info, h, "sudo -n find /tidb-deploy -path '*/backup/tiseal-*/conf/*' -type f | wc -l").trim()).not.toBe('0');
      // the stale key's bytes are nowhere on the host any more
      if (h === HOST) expect(sshOk(info, h, `sudo -n sh -c 'find /tidb-deploy /root /tmp -type f -exec sha256sum {} + 2>/dev/null' | grep -c ${stale.split(' ')[0]} || true`).trim()).toBe('0');
    }
    const off = await runTiseal(info, ['tls', 'disable', info.topologyFile, '--yes', '--clean-certificate']);
    if (off.code !== 0) throw new Error(`disable failed (${off.code}):\n${off.stdout.slice(-3000)}\n${off.stderr}`);
    for (const h of hosts) {
      expect(sshOk(info, h, "sudo -n find /tidb-deploy \\( -name '*.pem' -o -name 'tls' \\) -print").trim()).toBe('');
    }
  });

  it('a hostile log path reaching the root-side log tail runs nothing and reads no root file', async () => {
    const pool = new SshPool({ user: info.user, port: 22, identityFiles: [info.identityFile], knownHostsFile: info.knownHostsFile, sshConfigFile: false, agent: false });
    try {
      const exec = await pool.get(HOST);
      // A log dir whose name is shell code, made by the deploy user; one log a symlink to a root-only file.
      const dir = `${DEPLOY}/log x"; sudo touch /root/pwned; echo "$(touch /tmp/pwned2)\`touch /tmp/pwned3\``;
      sshOk(info, HOST, `mkdir -p ${shq(dir)} && printf 'start\\nfatal: bad config\\n' > ${shq(`${dir}/pd.log`)} && ln -s ${CANARY} ${shq(`${dir}/pd_stderr.log`)}`);
      const tail = await logTail(exec, [`${dir}/pd.log`, `${dir}/pd_stderr.log`], 5);
      expect(tail).toBe(`== ${dir}/pd.log\nstart\nfatal: bad config`);
      expect(tail).not.toContain('root only');
      expect(sshOk(info, HOST, 'sudo -n ls /root/pwned /tmp/pwned2 /tmp/pwned3 2>/dev/null; true').trim()).toBe('');
    } finally {
      await pool.closeAll();
      ssh(info, HOST, `rm -rf ${shq(`${DEPLOY}/log x"; sudo touch /root/pwned; echo "$(touch /tmp/pwned2)\`touch /tmp/pwned3\``)}`);
    }
  });
});
