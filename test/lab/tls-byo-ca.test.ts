/**
 * Bring your own CA: an intermediate CA made with the openssl CLI (as an operator's PKI would),
 * imported with --ca-cert/--ca-key/--ca-chain; every leaf is issued by it and verifies up to the root.
 * The enable also goes through a PD join that fails after its member add (pd-join-fault.ts).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { describeLab, ensureLab, sshOk } from './helpers';
import { expectRunningCluster } from './expect-cluster';
import { runTiseal, sClient, tlsEndpoints, tlsFiles } from './tiseal';
import { enableThroughFailedPdJoin } from './pd-join-fault';

jest.setTimeout(8 * 60_000);

function openssl(args: string[], input?: string): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

describeLab('tiseal tls enable with your own (intermediate) CA', () => {
  let info: LabInfo;
  let dir: string;

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-byo-'));
  }, 15 * 60_000);

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('rejects a non-CA certificate, then issues every leaf from the imported intermediate', async () => {
    const p = (f: string) => path.join(dir, f);
    fs.writeFileSync(p('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
    fs.writeFileSync(p('leaf.ext'), 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=clientAuth\n');
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('root.key'), '-out', p('root.crt'), '-days', '3650', '-subj', '/CN=Example Root CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('int.key'), '-out', p('int.csr'), '-subj', '/CN=Example TiDB Intermediate']);
    openssl(['x509', '-req', '-in', p('int.csr'), '-CA', p('root.crt'), '-CAkey', p('root.key'), '-CAcreateserial', '-days', '1825', '-extfile', p('ca.ext'), '-out', p('int.crt')]);
    openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('leaf.key'), '-out', p('leaf.csr'), '-subj', '/CN=not-a-ca']);
    openssl(['x509', '-req', '-in', p('leaf.csr'), '-CA', p('int.crt'), '-CAkey', p('int.key'), '-CAcreateserial', '-days', '30', '-extfile', p('leaf.ext'), '-out', p('leaf.crt')]);

    const notCa = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes', '--ca-cert', p('leaf.crt'), '--ca-key', p('leaf.key')]);
    expect(notCa.code).toBe(1);
    expect(notCa.stderr).toMatch(/not a CA|CA:TRUE|basicConstraints/i);
    // refused before any change: hosts have no tls/ yet
    expect(sshOk(info, '10.77.0.11', 'ls /tidb-deploy/pd-2379').split('\n')).not.toContain('tls');

    // The enable meets a failed PD join on the way (pd-join-fault.ts) and is finished by a re-run.
    await enableThroughFailedPdJoin(info, ['--ca-cert', p('int.crt'), '--ca-key', p('int.key'), '--ca-chain', p('root.crt')]);
    expectRunningCluster(info, 'https');

    // The bundle pushed as ca.crt is intermediate + root; every port chains to the root.
    const pushed = sshOk(info, '10.77.0.12', 'cat /tidb-deploy/tikv-20160/tls/ca.crt');
    expect(pushed.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(fs.readFileSync(tlsFiles(info).ca, 'utf8')).toBe(pushed);
    for (const { inst, port } of tlsEndpoints(info)) {
      const s = sClient(info, inst.host, port, ['-showcerts']);
      expect(`${inst.host}:${port} ${/Verify return code: 0 \(ok\)/.test(s.out)}`).toBe(`${inst.host}:${port} true`);
      const issuer = spawnSync('openssl', ['x509', '-noout', '-issuer'], { input: s.cert, encoding: 'utf8' }).stdout;
      expect(issuer).toMatch(/Example TiDB Intermediate/);
    }
    // Each certificate file is leaf + intermediate (what a Go server like PD sends as its chain), so a
    // client that trusts only the root verifies it from the file alone.
    fs.writeFileSync(p('pd-leaf.crt'), sshOk(info, '10.77.0.11', 'cat /tidb-deploy/pd-2379/tls/pd.crt'));
    expect(fs.readFileSync(p('pd-leaf.crt'), 'utf8').match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(openssl(['verify', '-CAfile', p('root.crt'), '-untrusted', p('pd-leaf.crt'), p('pd-leaf.crt')])).toMatch(/OK/);
    expect(openssl(['x509', '-noout', '-subject'], fs.readFileSync(p('pd-leaf.crt'), 'utf8'))).toMatch(/CN ?= ?pd/);
  });
});
