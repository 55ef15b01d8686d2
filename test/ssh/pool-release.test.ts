/**
 * A wide read-only fan-out: a host's connection is released once read (the pool's stats keep its
 * counts), a file is read in one round trip, and known_hosts, parsed once per change, still sees a
 * change. Against a real sshd on loopback.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { SshPool } from '../../src/ssh';
import { readRemoteText } from '../../src/tasks/remote';
import { keygen, sshdUnavailableReason, startSshd, type Sshd } from './sshdHarness';
import { describeUnless } from '../support/skip-or-fail';

jest.setTimeout(60_000);
const reason = sshdUnavailableReason();
if (reason) console.log(`skipping sshd pool tests: ${reason}`);

describeUnless(reason)('releasing a host from the SSH pool', () => {
  let sshd: Sshd;
  let work: string;
  let kh: string;
  beforeAll(async () => {
    sshd = await startSshd();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-release-'));
    kh = path.join(work, 'known_hosts');
    fs.writeFileSync(kh, sshd.knownHostsLines().join('\n') + '\n');
  });
  afterAll(async () => {
    await sshd?.stop();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });
  const newPool = () => new SshPool({ user: 'root', port: sshd.port, identityFiles: [sshd.clientKey], knownHostsFile: kh, sshConfigFile: false, agent: false });

  it('closes the connection, keeps its counts, and reconnects when asked again', async () => {
    const pool = newPool();
    try {
      const file = path.join(work, 'tikv.toml');
      fs.writeFileSync(file, '[security]\n');
      const ex = await pool.get('127.0.0.1');
      expect(await readRemoteText(ex, file)).toBe('[security]\n');
      expect(await readRemoteText(ex, path.join(work, 'missing.toml'))).toBeUndefined();
      expect(pool.stats()[0]).toMatchObject({ handshakes: 1, execs: 2 }); // one round trip per file, missing or not
      await pool.release('127.0.0.1');
      await new Promise<void>((r) => (ex.isClosed ? r() : ex.onClose(() => r()))); // the goodbye is not awaited by release
      expect(pool.stats()[0]).toMatchObject({ handshakes: 1, execs: 2 });
      const again = await pool.get('127.0.0.1');
      expect(again).not.toBe(ex);
      await again.exec('true');
      expect(pool.stats()[0]).toMatchObject({ handshakes: 2, execs: 3 });
      expect(sshd.accepted()).toBeGreaterThanOrEqual(2);
    } finally {
      await pool.closeAll();
    }
  });

  it('sees a known_hosts change between two connects (the parsed file is cached per change)', async () => {
    const pool = newPool();
    try {
      await pool.get('127.0.0.1');
      await pool.release('127.0.0.1');
      const other = keygen(path.join(work, 'other_host'), 'ed25519');
      const [type, b64] = fs.readFileSync(`${other}.pub`, 'utf8').trim().split(' ');
      fs.writeFileSync(kh, `[127.0.0.1]:${sshd.port} ${type} ${b64}\n`);
      await expect(pool.get('127.0.0.1')).rejects.toThrow(/HOST KEY CHANGED/);
    } finally {
      fs.writeFileSync(kh, sshd.knownHostsLines().join('\n') + '\n');
      await pool.closeAll();
    }
  });
});
