import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { execFileSync } from 'child_process';
import { FakePool } from '../../../src/ssh';
import { certificatesStep } from '../../../src/tasks/certs/issue';
import type { TlsContext } from '../../../src/tasks/context';
import { stageStep } from '../../../src/tasks/certs/stage';
import { parseTopology } from '../../../src/topology';
import { deployedPool, fakeTlsContext } from '../../support/deployed-pool';
import { testKeyPool } from '../../support/test-keys';

// RSA keys for every instance: seconds on a loaded two-core machine (keys come from
// test/support/test-keys.ts, made once per machine).
jest.setTimeout(60_000);

const topoFile = path.join(__dirname, '..', '..', '..', 'lab', 'topologies', 'default.yaml');

function context(want: 'on' | 'off', pool: FakePool, stateDir: string): TlsContext {
  const ctx = fakeTlsContext({ want, topology: parseTopology(fs.readFileSync(topoFile, 'utf8'), topoFile), pool, stateDir, flags: { keyType: 'rsa' } });
  ctx.keyPool = testKeyPool(); // what tls enable's RsaKeyPool is: leaves take keys made ahead
  return ctx;
}

/** `ca-path = ""` means TLS off, like an absent key (TiUP renders the learner config with empty ones). */
function withoutEmptyTls(doc: Record<string, unknown>): Record<string, unknown> {
  const sec = doc.security as Record<string, unknown> | undefined;
  if (sec) {
    for (const k of Object.keys(sec)) if (sec[k] === '' && /(ca|cert|key)[-_]path$|^cacert-path$/.test(k)) delete sec[k];
    if (Object.keys(sec).length === 0) delete doc.security;
  }
  return doc;
}

async function apply(ctx: TlsContext) {
  const d = await stageStep.decide(ctx);
  for (const a of d.actions) await a.run();
  return d;
}

describe('stage step (fake hosts)', () => {
  let stateDir: string;
  beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-stage-'))));
  afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('stages certificates, security keys and https run scripts, then has nothing left to do; disable restores the configs', async () => {
    const topology = parseTopology(fs.readFileSync(topoFile, 'utf8'), topoFile);
    const pool = deployedPool(topology);
    const original = new Map<string, string>();
    for (const inst of topology.instances) for (const f of [...inst.configFiles, inst.runScript]) original.set(`${inst.host}:${f}`, pool.host(inst.host).readText(f)!);

    const ctx = context('on', pool, stateDir);
    const certs = await certificatesStep.decide(ctx);
    for (const a of certs.actions) await a.run();
    expect(fs.statSync(path.join(stateDir, 'clusters', 'lab', 'tls', 'ca.key')).mode & 0o777).toBe(0o600);

    const decision = await stageStep.decide(ctx);
    // one action per instance; each shows diffs
    expect(decision.actions).toHaveLength(topology.instances.length);
    const pdAction = decision.actions.find((a) => a.title.startsWith('pd-2379 on 10.77.0.11'))!;
    expect(pdAction.title).toMatch(/tls\/ca.crt.*tls\/pd.pem.*tls\/pd.crt.*conf\/pd.toml.*scripts\/run_pd.sh/);
    expect(pdAction.diff).toContain('+cacert-path = "/tidb-deploy/pd-2379/tls/ca.crt"');
    expect(pdAction.diff).toMatch(/-\s+--client-urls="http:\/\/0\.0\.0\.0:2379"/);
    expect(pdAction.diff).toMatch(/\+\s+--client-urls="https:\/\/0\.0\.0\.0:2379"/);
    expect(pdAction.diff).not.toMatch(/BEGIN (RSA |EC )?PRIVATE KEY/);
    for (const a of decision.actions) await a.run();

    const h11 = pool.host('10.77.0.11');
    const key = h11.file('/tidb-deploy/tikv-20160/tls/tikv.pem')!;
    expect(key.mode & 0o777).toBe(0o600);
    expect(key.owner).toBe('tidb');
    const pdToml = TOML.parse(h11.readText('/tidb-deploy/pd-2379/conf/pd.toml')!) as { security: Record<string, string> };
    expect(pdToml.security['cert-path']).toBe('/tidb-deploy/pd-2379/tls/pd.crt');
    // backups of every replaced file, byte for byte
    expect(h11.readText('/tidb-deploy/pd-2379/backup/tiseal-r1/conf/pd.toml')).toBe(original.get('10.77.0.11:/tidb-deploy/pd-2379/conf/pd.toml'));
    // removed PDs get a --join script pointing at the kept one
    expect(pool.host('10.77.0.12').readText('/tidb-deploy/pd-2379/scripts/run_pd.sh')).toContain('--join="https://10.77.0.11:2379"');
    const cdc = topology.instances.find((i) => i.role === 'cdc')!;
    expect(pool.host(cdc.host).readText(cdc.runScript)).toMatch(/--ca[= ].*tls\/ca\.crt/);

    // The staged leaf verifies against the CA with openssl, with the host as an IP SAN.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-stage-v-'));
    try {
      fs.writeFileSync(path.join(dir, 'leaf.crt'), h11.readText('/tidb-deploy/tikv-20160/tls/tikv.crt')!);
      const caFile = path.join(stateDir, 'clusters', 'lab', 'tls', 'ca.crt');
      expect(execFileSync('openssl', ['verify', '-CAfile', caFile, path.join(dir, 'leaf.crt')]).toString()).toMatch(/OK/);
      expect(execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', path.join(dir, 'leaf.crt')]).toString()).toContain('IP Address:10.77.0.11');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }

    // idempotent: a second decide finds nothing to do (resume-safe)
    const again = await stageStep.decide(ctx);
    expect(again.actions).toEqual([]);

    // disable: the same step with want=off restores every config document and run script
    const off = context('off', pool, stateDir);
    await apply(off);
    for (const inst of topology.instances) {
      for (const f of inst.configFiles) {
        const [now, before] = [pool.host(inst.host).readText(f)!, original.get(`${inst.host}:${f}`)!];
        // TOML compares by value (empty TLS keys TiUP renders go); prometheus.yml comes back byte for byte
        if (f.endsWith('.toml')) expect(withoutEmptyTls(TOML.parse(now))).toEqual(withoutEmptyTls(TOML.parse(before)));
        else expect(now).toBe(before);
      }
    }
    expect(pool.host('10.77.0.11').readText('/tidb-deploy/pd-2379/scripts/run_pd.sh')).toBe(original.get('10.77.0.11:/tidb-deploy/pd-2379/scripts/run_pd.sh'));
    expect((await stageStep.decide(off)).actions).toEqual([]);
  });
});
