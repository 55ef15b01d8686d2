/**
 * `tls rotate --ca`: the cluster moves to a new CA with rolling restarts (trust both, reissue,
 * trust only the new one). Checked with openssl against the new and the retired CA.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { LabInfo } from '../../lab';
import { describeLab, sshOk } from './helpers';
import { expectClientRefused, expectTlsCluster } from './expect-cluster';
import { clusterDir, labOnTls, runTiseal, sClient, tlsEndpoints, tlsFiles } from './tiseal';

jest.setTimeout(10 * 60_000);

const subjectOf = (pem: string) => spawnSync('openssl', ['x509', '-noout', '-subject'], { input: pem, encoding: 'utf8' }).stdout.trim();
const issuerOf = (pem: string) => spawnSync('openssl', ['x509', '-noout', '-issuer'], { input: pem, encoding: 'utf8' }).stdout.trim();

describeLab('tiseal tls rotate --ca on the lab', () => {
  let info: LabInfo;
  let dir = '';

  beforeAll(async () => {
    info = await labOnTls();
  }, 15 * 60_000);

  afterAll(() => dir && fs.rmSync(dir, { recursive: true, force: true }));

  it('moves every component to the new CA and keeps the cluster healthy; the old CA\'s client is refused', async () => {
    const oldCa = fs.readFileSync(tlsFiles(info).ca, 'utf8');
    // tiseal's client certificate from the old CA, kept aside as a client of the old cluster would hold it
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-oldca-'));
    const old = { cert: path.join(dir, 'old.crt'), key: path.join(dir, 'old.key') };
    fs.copyFileSync(tlsFiles(info).cert, old.cert);
    fs.copyFileSync(tlsFiles(info).key, old.key);
    const r = await runTiseal(info, ['tls', 'rotate', info.topologyFile, '--ca', '--yes']);
    if (r.code !== 0) throw new Error(`rotate --ca failed (${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr}`);

    const newCa = fs.readFileSync(tlsFiles(info).ca, 'utf8');
    expect(subjectOf(newCa)).not.toBe(subjectOf(oldCa));
    const retired = fs.readdirSync(clusterDir(info)).filter((d) => d.startsWith('tls-retired-'));
    expect(retired).toHaveLength(1);
    expect(fs.readFileSync(path.join(clusterDir(info), retired[0], 'ca.crt'), 'utf8')).toBe(oldCa);
    expect(fs.statSync(path.join(clusterDir(info), retired[0], 'ca.key')).mode & 0o777).toBe(0o600);
    expect(fs.existsSync(path.join(clusterDir(info), 'tls-next'))).toBe(false);

    const newSubject = subjectOf(newCa).replace(/^subject=/, '');
    for (const { inst, port } of tlsEndpoints(info)) {
      const s = sClient(info, inst.host, port, ['-showcerts']);
      expect(`${inst.host}:${port} ${/Verify return code: 0 \(ok\)/.test(s.out)}`).toBe(`${inst.host}:${port} true`);
      expect(issuerOf(s.cert)).toContain(newSubject);
    }
    for (const h of info.hosts) {
      const bundles = sshOk(info, h, 'sudo -n sh -c "cat /tidb-deploy/*/tls/ca.crt"');
      expect(bundles).not.toContain(oldCa.split('\n')[1]);
    }
    expectTlsCluster(info);
    expect((await runTiseal(info, ['tls', 'status', info.topologyFile])).code).toBe(0);

    // Live, after the switch: the old CA's client certificate is refused where the new one is served.
    const f = tlsFiles(info);
    expectClientRefused(info, old, { cert: f.cert, key: f.key });
  });
});
