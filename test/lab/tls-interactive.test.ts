/**
 * A person at a terminal: `tiseal tls enable` asks before changing anything, and "no" changes
 * nothing. Driven through tmux (a real pseudo-terminal), read back with capture-pane.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab, waitUntil } from './helpers';
import { remoteChecksums, tisealEnv } from './tiseal';

jest.setTimeout(5 * 60_000);

const tmux = (...args: string[]) => spawnSync('tmux', args, { encoding: 'utf8' });
const hasTmux = spawnSync('tmux', ['-V']).status === 0;

describeLab('tiseal tls enable at a terminal', () => {
  let info: LabInfo;
  const session = `tiseal-it-${process.pid}`;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
  }, 15 * 60_000);

  afterAll(() => {
    tmux('kill-session', '-t', session);
  });

  (hasTmux ? it : it.skip)('shows the plan and a prompt; answering no changes nothing', async () => {
    const before = remoteChecksums(info);
    const env = tisealEnv(info);
    const exports = ['TISEAL_IDENTITY_FILE', 'TISEAL_KNOWN_HOSTS', 'TISEAL_SSH_USER', 'TISEAL_STATE_DIR'].map((k) => `${k}='${env[k]}'`).join(' ');
    const bin = path.join(__dirname, '..', '..', 'bin', 'tiseal.js');
    const cmd = `env ${exports} ${process.execPath} ${bin} tls enable ${info.topologyFile}; echo "EXIT=$?"; sleep 600`;
    expect(tmux('new-session', '-d', '-s', session, '-x', '220', '-y', '60', cmd).status).toBe(0);
    const screen = () => tmux('capture-pane', '-p', '-J', '-t', session, '-S', '-200').stdout;
    await waitUntil('the confirmation prompt', 60_000, () => (/Proceed\?/.test(screen()) ? true : undefined));
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
  });
});
