/**
 * Without the CA key on this machine: the CA the hosts trust is named by fingerprint with the
 * files to bring and `tls disable` as the way back; disable reaches a TLS PD with no CA key.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createCA, CertStore, issueLeaf, parseCertificate } from '../../../src/pki';
import { FakePool } from '../../../src/ssh';
import { caKeyProblem, clientTlsFromCaOrHosts, HostCa, readHostCa, rotationCaProblem } from '../../../src/tasks/certs/host-ca';
import { parseTopology, pdInstances } from '../../../src/topology';
import { tlsPaths } from '../../../src/components/tls-paths';

jest.setTimeout(60_000);

const topology = () => parseTopology('global:\n  user: tidb\npd_servers:\n  - host: 10.0.0.1\n  - host: 10.0.0.2\ntikv_servers:\n  - host: 10.0.0.1\n', 'c.yaml');
let stateDir: string;
beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-hostca-'))));
afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));
const cmd = () => ({ name: 'tls enable', topologyFile: 'c.yaml', stateDir, cluster: 'c' });

async function hostsWithCa() {
  const t = topology();
  const ca = await createCA({ cluster: 'c', days: 30, keyType: 'ecdsa' });
  const pool = new FakePool();
  const pd2 = pdInstances(t)[1]; // the first PD has no tls/ (e.g. a replaced host): the next one is read
  const leaf = await issueLeaf(ca, { commonName: pd2.certName, hosts: [pd2.host], days: 10, keyType: 'ecdsa' });
  const p = tlsPaths(pd2);
  pool.host(pd2.host).addFile(p.ca, ca.bundlePem, { owner: 'tidb' }).addFile(p.cert, leaf.certPem, { owner: 'tidb' }).addFile(p.key, leaf.keyPem, { owner: 'tidb', mode: 0o600 });
  return { t, ca, pool, pd2, leaf };
}

describe('the CA on the hosts vs the CA here', () => {
  it('names the host file, its fingerprint, what to copy where, and disable, when the key is missing', async () => {
    const { t, ca, pool, pd2 } = await hostsWithCa();
    const hostCa = (await readHostCa({ pool, topology: t }))!;
    expect(hostCa).toMatchObject({ host: pd2.host, file: tlsPaths(pd2).ca });
    const store = new CertStore(stateDir, 'c');
    const e = caKeyProblem(store, hostCa, cmd())!;
    expect(e.message).toBe(`tls enable: the hosts trust the CA in ${pd2.host}:${tlsPaths(pd2).ca} (CN "tiseal CA c", SHA-256 ${ca.info.fingerprintSha256}), but its key is not on this machine (${store.caKeyPath} is missing)`);
    expect(e.suggestion).toContain(`into ${store.dir}, the CA whose \`openssl x509 -noout -fingerprint -sha256 -in ca.crt\` is ${ca.info.fingerprintSha256}`);
    expect(e.suggestion).toContain('tiseal tls disable c.yaml` (it needs no CA key)');
  });

  it('refuses another CA in the state dir, and accepts the same one', async () => {
    const { t, ca, pool } = await hostsWithCa();
    const hostCa = (await readHostCa({ pool, topology: t }))!;
    const other = new CertStore(stateDir, 'c');
    await other.saveCA(await createCA({ cluster: 'c', days: 30, keyType: 'ecdsa' }));
    expect(caKeyProblem(other, hostCa, cmd())?.message).toMatch(/is not the one the hosts trust/);
    const same = new CertStore(stateDir, 'c2');
    await same.saveCA(ca);
    expect(caKeyProblem(same, hostCa, cmd())).toBeUndefined();
  });

  it('disable with no CA here calls PD with its own certificate from the host, in memory', async () => {
    const { t, pool, leaf, pd2 } = await hostsWithCa();
    const store = new CertStore(stateDir, 'c');
    expect(await clientTlsFromCaOrHosts({ pool, topology: t }, store, false)).toBeUndefined(); // enable: never a host's key
    const got = (await clientTlsFromCaOrHosts({ pool, topology: t }, store, true))!;
    expect(got.tls.cert).toBe(leaf.certPem);
    expect(got.note).toMatch(new RegExp(`calling PD with ${pd2.name}'s own certificate .*held in memory, not saved`));
    expect(fs.readdirSync(stateDir)).toEqual([]); // nothing written here
  });

  it('a state dir with only the CA gets a client certificate issued in memory', async () => {
    const { t, ca, pool } = await hostsWithCa();
    const store = new CertStore(stateDir, 'c');
    await store.saveCA(ca);
    const got = (await clientTlsFromCaOrHosts({ pool, topology: t }, store, true))!;
    expect(parseCertificate(String(got.tls.cert))).toMatchObject({ subjectCN: 'tiseal', issuerCN: 'tiseal CA c' });
    expect(pool.host('10.0.0.2').calls).toEqual([]); // no host key read
    expect(store.loadClient()).toBeNull();
  });

  it('reads the phase of a CA move from the hosts bundle and names the CA whose key is missing', async () => {
    const [oldCa, newCa] = [await createCA({ cluster: 'c', days: 30, keyType: 'ecdsa' }), await createCA({ commonName: 'tiseal CA c new', days: 30, keyType: 'ecdsa' })];
    const bundle = (...cas: typeof oldCa[]): HostCa => ({ host: '10.0.0.1', file: '/d/tls/ca.crt', pem: '', cas: cas.map((c) => ({ cn: c.info.subjectCN, fingerprint: c.info.fingerprintSha256 })) });
    const current = new CertStore(stateDir, 'c');
    const next = new CertStore(stateDir, 'c', 'tls-next');
    await current.saveCA(oldCa);
    const c = { name: 'tls rotate --ca', topologyFile: 'c.yaml', cluster: 'c' };
    expect(rotationCaProblem(current, next, bundle(oldCa), c)).toBeUndefined(); // not moving
    const mid = rotationCaProblem(current, next, bundle(oldCa, newCa), c)!; // tls-next lost mid-move
    expect(mid.message).toBe(`tls rotate --ca: a move between two CAs is under way (the hosts trust both): 10.0.0.1:/d/tls/ca.crt has CN "tiseal CA c new", SHA-256 ${newCa.info.fingerprintSha256}, whose key is not on this machine`);
    expect(mid.suggestion).toContain(`into ${next.dir}`);
    expect(rotationCaProblem(current, next, bundle(newCa), c)!.message).toMatch(/the hosts trust only this CA: .*tiseal CA c new/);
    await next.saveCA(newCa);
    expect(rotationCaProblem(current, next, bundle(oldCa, newCa), c)).toBeUndefined(); // resumable here
    expect(rotationCaProblem(current, next, bundle(newCa), c)).toBeUndefined();
  });
});
