import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { FakePool } from '../../../src/ssh';
import { encryptionConfigStep } from '../../../src/tasks/encrypt';
import { parseTopology } from '../../../src/topology';
import { fakeTlsContext } from '../../support/tls-context';

// Issue #12 item 11: rewriting a config leaves every line tiseal does not own byte-identical.
// PD/TiKV configs carry operators' comments and float spellings (`5.0`) that a re-serialised
// file would lose; the encryption step must edit in place like the TLS stage step.
const topoFile = path.join(__dirname, '..', '..', '..', 'lab', 'topologies', 'default.yaml');

const OPERATOR_TIKV = [
  '# tikv.toml written by the operator: keep this comment',
  'log-level = "info"',
  '',
  '[server]',
  'grpc-concurrency = 4 # inline comment stays',
  '',
  '[storage.block-cache]',
  'capacity = "1GB"',
  '',
  '[raftstore]',
  'region-split-check-diff = "32MB"',
  'pd-heartbeat-tick-interval = "60s"',
  'some-ratio = 5.0',
  '',
].join('\n');

describe('encryption config step (fake hosts)', () => {
  let stateDir: string;
  beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-enc-'))));
  afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('adds [security.encryption] and leaves every other byte of tikv.toml as it was', async () => {
    const topology = parseTopology(fs.readFileSync(topoFile, 'utf8'), topoFile);
    const pool = new FakePool();
    const tikv = topology.instances.filter((i) => i.role === 'tikv');
    for (const inst of tikv) pool.host(inst.host).addFile(inst.configFiles.find((f) => f.endsWith('tikv.toml'))!, OPERATOR_TIKV, { owner: 'tidb', mode: 0o644 });
    for (const inst of topology.instances.filter((i) => i.role === 'tiflash')) {
      for (const f of inst.configFiles) if (!pool.host(inst.host).readText(f)) pool.host(inst.host).addFile(f, '# learner\n', { owner: 'tidb', mode: 0o644 });
    }
    const ctx = fakeTlsContext({ want: 'on', topology, stateDir, pool, removedPds: [], flags: { keyType: 'rsa' } });
    const step = encryptionConfigStep('enc', () => ({ method: 'aes256-ctr', masterKey: '/tidb-deploy/x/encryption/master.key' }));
    const d = await step.decide(ctx);
    for (const a of d.actions) await a.run();

    for (const inst of tikv) {
      const file = inst.configFiles.find((f) => f.endsWith('tikv.toml'))!;
      const after = pool.host(inst.host).readText(file)!;
      expect(after.startsWith(OPERATOR_TIKV)).toBe(true); // nothing before the appended section moved
      expect(after).toContain('some-ratio = 5.0');
      const enc = (TOML.parse(after) as any).security.encryption;
      expect(enc['data-encryption-method']).toBe('aes256-ctr');
      expect(enc['master-key'].path).toBe('/tidb-deploy/x/encryption/master.key');
    }
    // Idempotent: a second decide has nothing to do.
    expect((await step.decide(ctx)).actions).toHaveLength(0);
  });
});
