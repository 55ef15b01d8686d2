/**
 * A person at a terminal: `tiseal tls enable` asks before changing anything, "no" changes nothing
 * (files, PD membership, every unit's start time and PID), "yes" converts the cluster. Driven
 * through tmux (a real pseudo-terminal), read back with capture-pane.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { testUnless } from '../support/skip-or-fail';
import { describeLab, ensureLab, waitUntil } from './helpers';
import { expectPlainCluster, expectTlsCluster } from './expect-cluster';
import { labTopology, pdMembership, remoteChecksums, runTiseal, tisealEnv, unitStartTimes } from './tiseal';

jest.setTimeout(10 * 60_000);

const tmux = (...args: string[]) => spawnSync('tmux', args, { encoding: 'utf8' });
const withTmux = testUnless(spawnSync('tmux', ['-V']).status === 0 ? undefined : 'tmux is not installed (the prompt tests need a terminal)');

describeLab('tiseal tls enable at a terminal', () => {
  let info: LabInfo;
  const session = `tiseal-it-${process.pid}`;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
  }, 15 * 60_000);

  afterAll(() => {
    for (const s of [session, `${session}-yes`]) tmux('kill-session', '-t', s);
  });

  /** Start `tiseal tls enable` at a terminal in a fresh tmux session; returns a screen reader. */
  async function promptFor(session: string): Promise<() => string> {
    const env = tisealEnv(info);
    const exports = ['TISEAL_IDENTITY_FILE', 'TISEAL_KNOWN_HOSTS', 'TISEAL_SSH_USER', 'TISEAL_STATE_DIR'].map((k) => `${k}='${env[k]}'`).join(' ');
    const bin = path.join(__dirname, '..', '..', 'bin', 'tiseal.js');
    const cmd = `env ${exports} ${process.execPath} ${bin} tls enable ${info.topologyFile}; echo "EXIT=$?"; sleep 600`;
    expect(tmux('new-session', '-d', '-s', session, '-x', '220', '-y', '60', cmd).status).toBe(0);
    const screen = () => tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-2000').stdout;
    await waitUntil('the confirmation prompt', 60_000, () => (/Proceed\?/.test(screen()) ? true : undefined));
    return screen;
  }

  withTmux('shows the plan and a prompt; answering no changes nothing', async () => {
    const before = remoteChecksums(info);
    const started = unitStartTimes(info, labTopology(info));
    const members = pdMembership(info, 'http');
    const screen = await promptFor(session);
    const prompt = screen();
    expect(prompt).toMatch(/turn TLS ON for cluster 'topology'/);
    expect(prompt).toMatch(/PD is scaled in to pd-10\.77\.0\.1\d-2379/);
    expect(prompt).toMatch(/\(y\/N\)/);
    tmux('send-keys', '-t', session, 'n', 'Enter');
    await waitUntil('tiseal to exit', 30_000, () => (/EXIT=\d+/.test(screen()) ? true : undefined));
    const after = screen();
    expect(after).toMatch(/Nothing was changed/);
    expect(after).toMatch(/EXIT=1/);
    expect(remoteChecksums(info)).toBe(before);
    expect(unitStartTimes(info, labTopology(info))).toEqual(started);
    expect(pdMembership(info, 'http')).toEqual(members);
    tmux('kill-session', '-t', session);
  });

  withTmux('answering yes converts the cluster to TLS; disable brings it back', async () => {
    const screen = await promptFor(`${session}-yes`);
    tmux('send-keys', '-t', `${session}-yes`, 'y', 'Enter');
    await waitUntil('tiseal to finish the conversion', 8 * 60_000, () => (/EXIT=\d+/.test(screen()) ? true : undefined), 2000);
    const out = screen();
    if (!/EXIT=0/.test(out)) throw new Error(`tls enable at a terminal did not succeed:\n${out.slice(-3000)}`);
    expectTlsCluster(info);
    const back = await runTiseal(info, ['tls', 'disable', info.topologyFile, '--yes']);
    if (back.code !== 0) throw new Error(`disable failed (${back.code}):\n${back.stdout.slice(-2000)}\n${back.stderr}`);
    await expectPlainCluster(info);
  });
});
