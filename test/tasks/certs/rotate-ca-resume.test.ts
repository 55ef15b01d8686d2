/**
 * `tls rotate --ca` resumed from the hosts: the phase of a half-done CA move is read from each
 * host's ca.crt (by fingerprint) and leaf (by chain), and every step decides from it. Fake hosts
 * hold the files a killed run leaves at each phase.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tlsPaths } from '../../../src/components/tls-paths';
import type { GlobalOptions } from '../../../src/options';
import { PdClient } from '../../../src/pd/client';
import { CertificateAuthority, CertStore, createCA, issueLeaf, parseCertificate } from '../../../src/pki';
import { rotateCaSteps } from '../../../src/plans/rotate';
import { FakePool } from '../../../src/ssh';
import { ClusterDir } from '../../../src/state/cluster-dir';
import type { TlsContext } from '../../../src/tasks/context';
import type { RotateState } from '../../../src/tasks/certs/rotate';
import { CaRotation, movePhase, nextCaStep, readMoveState, recoverLocalCaMove, reissueFromNewCaStep, trustBothSteps, trustNewOnlySteps } from '../../../src/tasks/certs/rotate-ca';
import { parseTopology } from '../../../src/topology';
import type { Instance, Topology } from '../../../src/topology/types';

jest.setTimeout(60_000);

const topology = (): Topology => parseTopology('global:\n  user: tidb\npd_servers:\n  - host: 10.0.0.1\n  - host: 10.0.0.2\ntikv_servers:\n  - host: 10.0.0.3\n', 'c.yaml');

let stateDir: string;
let oldCa: CertificateAuthority;
let newCa: CertificateAuthority;
beforeAll(async () => {
  oldCa = await createCA({ commonName: 'tiseal CA c', days: 30, keyType: 'ecdsa' });
  newCa = await createCA({ commonName: 'tiseal CA c 2', days: 30, keyType: 'ecdsa' });
});
beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-rotca-'))));
afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

type Trust = 'old' | 'both' | 'new' | 'none';
type Leaf = 'old' | 'new';
const bundleOf = (t: Trust) => (t === 'old' ? oldCa.bundlePem : t === 'new' ? newCa.bundlePem : t === 'both' ? oldCa.bundlePem + newCa.bundlePem : undefined);

/** Hosts holding, per instance in topology order, the trust bundle and leaf given. */
async function hosts(t: Topology, states: Array<[Trust, Leaf]>): Promise<FakePool> {
  const pool = new FakePool();
  for (const [k, inst] of t.instances.entries()) {
    const [trust, leaf] = states[k];
    const l = await issueLeaf(leaf === 'old' ? oldCa : newCa, { commonName: inst.certName, hosts: [inst.host], days: 10, keyType: 'ecdsa' });
    const p = tlsPaths(inst);
    const h = pool.host(inst.host);
    const b = bundleOf(trust);
    if (b) h.addFile(p.ca, b, { owner: 'tidb' });
    h.addFile(p.cert, l.certPem, { owner: 'tidb' }).addFile(p.key, l.keyPem, { owner: 'tidb', mode: 0o600 });
  }
  return pool;
}

function context(t: Topology, pool: FakePool): TlsContext {
  return {
    want: 'on',
    runId: 'r2',
    topology: t,
    opts: { stateDir, concurrency: 4, tiupMeta: false } as GlobalOptions,
    cluster: new ClusterDir(stateDir, 'c'),
    pool,
    pd: new PdClient([], undefined),
    user: 'tidb',
    removedPds: [],
    flags: { certDays: 10, caDays: 30, keyType: 'ecdsa' },
    notes: [],
    resuming: false,
    clientTls: { ca: oldCa.bundlePem },
  };
}

/** The local state of a move under way: current CA in tls/, new one in tls-next/. */
async function rotation(): Promise<CaRotation> {
  const current = new CertStore(stateDir, 'c');
  const next = new CertStore(stateDir, 'c', 'tls-next');
  await current.saveCA(oldCa);
  await next.saveCA(newCa);
  return { current, next };
}

const titles = (d: { actions: Array<{ title: string }> }) => d.actions.map((a) => a.title);
const on = (inst: Instance) => `of ${inst.id} on ${inst.host}`;

describe('the phase of a CA move, read from the hosts', () => {
  const cases: Array<[string, Array<[Trust, Leaf]>, string]> = [
    ['not-started', [['old', 'old'], ['old', 'old'], ['old', 'old']], 'all 3 instances trust only the current CA'],
    ['trusting-both', [['both', 'old'], ['old', 'old'], ['both', 'old']], '2 of 3 instances trust both CAs'],
    ['reissuing', [['both', 'new'], ['both', 'old'], ['both', 'new']], '2 of 3 instances hold a leaf from the new CA, 3 trust both CAs'],
    ['trusting-new', [['new', 'new'], ['both', 'new'], ['both', 'new']], '1 of 3 instances trust only the new CA'],
    ['moved', [['new', 'new'], ['new', 'new'], ['new', 'new']], 'all 3 instances trust only the new CA'],
  ];
  it.each(cases)('%s', async (phase, states, evidence) => {
    const t = topology();
    const r = { ...(await rotation()), oldCa, newCa };
    const got = movePhase(await readMoveState(context(t, await hosts(t, states)), r));
    expect(got).toEqual({ phase, evidence });
  });

  it('a host that fits no phase (no bundle, or trusting only the new CA with an old leaf) is named', async () => {
    const t = topology();
    const r = { ...(await rotation()), oldCa, newCa };
    expect(movePhase(await readMoveState(context(t, await hosts(t, [['old', 'old'], ['none', 'old'], ['old', 'old']])), r))).toEqual({
      phase: 'other',
      evidence: `${t.instances[1].id} on 10.0.0.2 trusts neither the current nor the new CA alone or together and serves a leaf from the old CA`,
    });
    expect(movePhase(await readMoveState(context(t, await hosts(t, [['new', 'old'], ['both', 'new'], ['both', 'new']])), r)).phase).toBe('other');
  });

  it('next-ca continues the move and says which phase the hosts are in; refuses a host that fits none', async () => {
    const t = topology();
    const r = await rotation();
    const ctx = context(t, await hosts(t, [['both', 'new'], ['both', 'old'], ['both', 'old']]));
    const d = await nextCaStep(r).decide(ctx);
    expect(d.actions).toEqual([]);
    expect(d.reason).toBe(`continuing the move to "tiseal CA c 2" from ${r.next.dir}: phase reissuing, 1 of 3 instances hold a leaf from the new CA, 3 trust both CAs (decided from the hosts)`);
    expect(ctx.clientTls!.ca).toBe(oldCa.bundlePem + newCa.bundlePem);
    const odd = context(t, await hosts(t, [['new', 'old'], ['both', 'old'], ['both', 'old']]));
    await expect(nextCaStep(r).decide(odd)).rejects.toThrow(/fits no phase on the hosts: .* trusts the new CA and serves a leaf from the old CA/);
  });
});

describe('each step decides from the hosts', () => {
  it('trust-both pushes only to hosts that trust the current CA alone (by fingerprint, not bytes)', async () => {
    const t = topology();
    const pool = await hosts(t, [['both', 'old'], ['old', 'old'], ['new', 'new']]);
    // Same two CAs, other order and line ends: already trusting both.
    pool.host('10.0.0.1').addFile(tlsPaths(t.instances[0]).ca, (newCa.bundlePem + oldCa.bundlePem).replace(/\n/g, '\r\n'), { owner: 'tidb' });
    const r = { ...(await rotation()), oldCa, newCa };
    const ctx = context(t, pool);
    const d = await trustBothSteps(r)[0].decide(ctx);
    expect(titles(d)).toEqual([`rewrite tls/ca.crt ${on(t.instances[1])}`]);
    for (const a of d.actions) await a.run();
    expect(pool.host('10.0.0.2').readText(tlsPaths(t.instances[1]).ca)).toBe(oldCa.bundlePem + newCa.bundlePem);
    expect((await trustBothSteps(r)[0].decide(ctx)).actions).toEqual([]);
  });

  it('reissue leaves alone leaves already from the new CA, and still verifies them as served', async () => {
    const t = topology();
    const pool = await hosts(t, [['both', 'new'], ['both', 'old'], ['both', 'new']]);
    const r = { ...(await rotation()), oldCa, newCa };
    const ctx = context(t, pool);
    await nextCaStep(r).decide(ctx);
    const state: RotateState = { pushed: new Map() };
    const d = await reissueFromNewCaStep(r, state).decide(ctx);
    expect(titles(d)).toEqual([`issue tiseal's client certificate from the new CA into ${r.next.dir}`, `${t.instances[1].id} on 10.0.0.2: key and certificate from the new CA`]);
    const serial = (inst: Instance) => parseCertificate(pool.host(inst.host).readText(tlsPaths(inst).cert)!).serialHex.toLowerCase().replace(/^0+/, '');
    // The leaves a killed run wrote are checked by verify-served like the ones written now.
    expect(state.pushed.get(`${t.instances[0].id}@10.0.0.1`)).toBe(serial(t.instances[0]));
    expect(state.pushed.get(`${t.instances[2].id}@10.0.0.3`)).toBe(serial(t.instances[2]));
    expect(state.pushed.size).toBe(3);
  });

  it('trust-new refuses while any leaf is from the old CA, then pushes only where the host trusts both', async () => {
    const t = topology();
    const r = { ...(await rotation()), oldCa, newCa };
    const early = context(t, await hosts(t, [['both', 'new'], ['both', 'old'], ['both', 'new']]));
    await expect(trustNewOnlySteps(r)[0].decide(early)).rejects.toThrow(`10.0.0.2 pd-2379.service: its certificate is not from the new CA, so no host may trust only the new CA yet`);
    const pool = await hosts(t, [['new', 'new'], ['both', 'new'], ['both', 'new']]);
    const d = await trustNewOnlySteps(r)[0].decide(context(t, pool));
    expect(titles(d)).toEqual([`rewrite tls/ca.crt ${on(t.instances[1])}`, `rewrite tls/ca.crt ${on(t.instances[2])}`]);
  });

  it('the plan ends with TiUP\'s tls/ after the new CA is promoted here', () => {
    expect(rotateCaSteps(stateDir, 'c').steps.map((s) => s.id).slice(-3)).toEqual(['promote-ca', 'tiup-meta', 'purge-key-backups']);
  });
});

describe('a run killed while changing the CA files here', () => {
  it('finishes a promote the kill cut in half when the hosts trust only the new CA', async () => {
    const t = topology();
    const r = await rotation();
    fs.renameSync(r.current.dir, path.join(path.dirname(r.current.dir), 'tls-retired-20261130T010000'));
    const pool = await hosts(t, [['new', 'new'], ['new', 'new'], ['new', 'new']]);
    await expect(recoverLocalCaMove({ pool, topology: t }, stateDir, 'c', true)).rejects.toThrow(/a `tls rotate --ca` was killed while making it the cluster CA/);
    expect(fs.existsSync(r.next.dir)).toBe(true); // --dry-run changes nothing
    const note = await recoverLocalCaMove({ pool, topology: t }, stateDir, 'c', false);
    expect(note).toMatch(/so it is now the cluster CA \(decided from the hosts\)$/);
    expect(new CertStore(stateDir, 'c').loadCA().info.fingerprintSha256).toBe(newCa.info.fingerprintSha256);
    expect(fs.existsSync(r.next.dir)).toBe(false);
  });

  it('leaves tls-next where it is while the hosts still trust both CAs', async () => {
    const t = topology();
    const r = await rotation();
    fs.renameSync(r.current.dir, path.join(path.dirname(r.current.dir), 'tls-retired-x'));
    const pool = await hosts(t, [['both', 'new'], ['both', 'new'], ['both', 'new']]);
    expect(await recoverLocalCaMove({ pool, topology: t }, stateDir, 'c', false)).toBeUndefined();
    expect(fs.existsSync(r.next.caCertPath)).toBe(true);
    expect(fs.existsSync(r.current.dir)).toBe(false);
  });

  it('sets a half-saved new CA (key, no certificate) aside when no host trusts anything but the current CA', async () => {
    const t = topology();
    const r = await rotation();
    fs.rmSync(r.next.caCertPath);
    const pool = await hosts(t, [['old', 'old'], ['old', 'old'], ['old', 'old']]);
    const note = await recoverLocalCaMove({ pool, topology: t }, stateDir, 'c', false);
    expect(note).toMatch(/held a CA key without its certificate and no host trusts it: set aside as .*tls-next-incomplete-/);
    expect(fs.existsSync(r.next.dir)).toBe(false);
    // A host trusting another CA: not this function's to decide (the CA checks name it).
    await r.next.saveCA(newCa);
    fs.rmSync(r.next.caCertPath);
    const other = await hosts(t, [['both', 'old'], ['old', 'old'], ['old', 'old']]);
    expect(await recoverLocalCaMove({ pool: other, topology: t }, stateDir, 'c', false)).toBeUndefined();
    expect(fs.existsSync(r.next.caKeyPath)).toBe(true);
  });
});
