/**
 * `tiseal audit`: on the plaintext lab it reports the TLS FAILs; after `tls enable --verify-cn`
 * and `encrypt enable` it passes (redact-info-log stays a WARN, so --fail-on warn still fails).
 * Then every check meets a planted fault and must say FAIL (or WARN), each fault undone after its
 * case, and a last audit proves the cluster is back where it was.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { labReset, LabInfo } from '../../lab';
import { tlsConfigFiles, tlsPaths } from '../../src/components';
import type { Instance } from '../../src/topology/types';
import { shq } from '../../src/util/shell';
import { makePki } from './certs';
import { describeLab, ensureLab, sshOk, waitUntil } from './helpers';
import { curl, labTopology, runTiseal, tlsFiles } from './tiseal';
import { validate } from '../support/json-schema';
import * as schema from '../../docs/audit.schema.json';

jest.setTimeout(25 * 60_000);

type Finding = { check: string; level: string; target: string; evidence: string };

async function audit(info: LabInfo, extra: string[] = []): Promise<{ code: number | null; findings: Finding[] }> {
  const r = await runTiseal(info, ['audit', info.topologyFile, '--json', ...extra]);
  let out: { findings: Finding[] };
  try {
    out = JSON.parse(r.stdout) as { findings: Finding[] };
  } catch {
    throw new Error(`audit printed no JSON (exit ${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
  }
  expect(validate(schema, out)).toEqual([]);
  return { code: r.code, findings: out.findings };
}

/** A script run as root on a host (on stdin: nothing on the command line). */
const root = (info: LabInfo, host: string, script: string) => sshOk(info, host, 'sudo -n bash -s', `set -euo pipefail\n${script}\n`);

/** Save a remote file (content, owner, mode) and get back a function that puts it back exactly. */
function saved(info: LabInfo, host: string, file: string): () => void {
  const [meta, b64] = root(info, host, `stat -c '%U:%G %a' ${shq(file)}; base64 -w0 ${shq(file)}`).split('\n');
  const [owner, mode] = meta.split(' ');
  return () => root(info, host, `t=$(mktemp ${shq(file)}.XXXX); echo ${shq(b64)} | base64 -d > "$t"; chown ${owner} "$t"; chmod ${mode} "$t"; mv -f "$t" ${shq(file)}`);
}

/** Write a file on a host as root with owner and mode. */
function plantFile(info: LabInfo, host: string, file: string, content: string | Buffer, owner: string, mode: string): void {
  const b64 = Buffer.from(content).toString('base64');
  root(info, host, `mkdir -p ${shq(path.posix.dirname(file))}; echo ${shq(b64)} | base64 -d > ${shq(file)}; chown ${owner} ${shq(file)}; chmod ${mode} ${shq(file)}`);
}

/** A leaf from the cluster's own CA (openssl CLI): SANs as given; `expired` makes it valid only in 2020. */
function clusterLeaf(info: LabInfo, dir: string, name: string, sans: string[], expired = false): { cert: string; key: string } {
  const f = tlsFiles(info);
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  fs.writeFileSync(path.join(dir, `${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${sans.join(',')}\n`);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.pem`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  if (!expired) {
    run(['x509', '-req', '-in', `${name}.csr`, '-CA', f.ca, '-CAkey', f.caKey, '-CAcreateserial', '-CAserial', 'serial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  } else {
    fs.writeFileSync(path.join(dir, 'index.txt'), '');
    fs.writeFileSync(path.join(dir, 'ca.cnf'), `[ca]\ndefault_ca=d\n[d]\ndatabase=index.txt\nnew_certs_dir=.\nserial=ca.serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\n`);
    fs.writeFileSync(path.join(dir, 'ca.serial'), '1000\n');
    run(['ca', '-batch', '-config', 'ca.cnf', '-cert', f.ca, '-keyfile', f.caKey, '-in', `${name}.csr`, '-out', `${name}.crt`, '-notext', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-extfile', `${name}.ext`]);
  }
  return { cert: fs.readFileSync(path.join(dir, `${name}.crt`), 'utf8'), key: fs.readFileSync(path.join(dir, `${name}.pem`), 'utf8') };
}

describeLab('tiseal audit on the lab', () => {
  let info: LabInfo;
  let secured: Finding[] | undefined;
  const inst = (role: string, host: string): Instance => {
    const i = labTopology(info).instances.find((x) => x.role === role && x.host === host);
    if (!i) throw new Error(`no ${role} on ${host} in the lab topology`);
    return i;
  };
  const one = (findings: Finding[], check: string, target: string | ((t: string) => boolean)): Finding => {
    const hits = findings.filter((f) => f.check === check && (typeof target === 'string' ? f.target === target : target(f.target)));
    if (hits.length !== 1) throw new Error(`expected one ${check} finding for ${String(target)}, got ${JSON.stringify(hits)}`);
    return hits[0];
  };
  const level = (findings: Finding[], check: string, target: string | ((t: string) => boolean)) => `${check} ${typeof target === 'string' ? target : target.name}: ${one(findings, check, target).level}`;
  const port = (host: string, p: number) => Object.defineProperty((t: string) => t.startsWith(`${host}:${p} `), 'name', { value: `${host}:${p}` });
  const pdHealthy = () =>
    waitUntil('3 healthy PD members over https', 90_000, () => {
      const f = tlsFiles(info);
      const r = curl(['--cacert', f.ca, '--cert', f.cert, '--key', f.key, 'https://10.77.0.11:2379/pd/api/v1/health']);
      if (r.code !== 0) return undefined;
      const h = JSON.parse(r.out) as Array<{ health: boolean }>;
      return h.length === 3 && h.every((m) => m.health) ? true : undefined;
    });

  beforeAll(async () => {
    info = await ensureLab();
    await labReset();
  }, 15 * 60_000);

  it('fails a plaintext cluster and passes it once TLS with CN lists and encryption are on', async () => {
    const plain = await audit(info);
    expect(plain.code).toBe(1);
    const fails = plain.findings.filter((f) => f.level === 'FAIL');
    expect(fails.some((f) => f.check === 'tls' && f.target.startsWith('10.77.0.11:2379'))).toBe(true);
    expect(fails.some((f) => f.check === 'tls' && f.target.startsWith('10.77.0.12:20160'))).toBe(true);
    expect(fails.some((f) => f.check === 'encryption-at-rest')).toBe(true);
    expect(plain.findings.find((f) => f.check === 'replicas')?.level).toBe('PASS');

    for (const args of [['tls', 'enable', info.topologyFile, '--yes', '--verify-cn'], ['encrypt', 'enable', info.topologyFile, '--yes']]) {
      const r = await runTiseal(info, args);
      if (r.code !== 0) throw new Error(`${args.join(' ')} failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    }
    const s = await audit(info);
    expect(s.findings.filter((f) => f.level === 'FAIL')).toEqual([]);
    expect(s.code).toBe(0);
    for (const check of ['tls', 'mtls', 'tls-version', 'certificate', 'caller-identity', 'key-files', 'backup-keys', 'ca-key', 'encryption-at-rest', 'replicas']) {
      expect(`${check}: ${s.findings.filter((f) => f.check === check && f.level === 'PASS').length > 0}`).toBe(`${check}: true`);
    }
    expect((await audit(info, ['--fail-on', 'warn'])).code).toBe(1);
    secured = s.findings;
  });

  it('planted faults in files, config and PD: each check says FAIL (or WARN); all undone', async () => {
    if (!secured) throw new Error('needs the secured cluster of the first case');
    const pd11 = inst('pd', '10.77.0.11');
    const tikv11 = inst('tikv', '10.77.0.11');
    const tikv12 = inst('tikv', '10.77.0.12');
    const pd13 = inst('pd', '10.77.0.13');
    const tidb = inst('tidb', '10.77.0.14');
    const cdc = inst('cdc', '10.77.0.14');
    const tiflash = inst('tiflash', '10.77.0.15');
    const caKeyPem = fs.readFileSync(tlsFiles(info).caKey, 'utf8');
    const { createPrivateKey } = await import('crypto');
    const caKeyDer = createPrivateKey(caKeyPem).export({ type: 'pkcs8', format: 'der' });
    const pki = makePki();
    const dir = fs.mkdtempSync(path.join(pki.dir, 'leaf-'));
    const undo: Array<() => void> = [];
    const f = tlsFiles(info);
    const pdCurl = (host: string, body: string) => curl(['--cacert', f.ca, '--cert', f.cert, '--key', f.key, '-X', 'POST', '-d', body, `https://${host}:2379/pd/api/v1/config/replicate`]);
    try {
      // a key 0644; a key owned by another user
      const pdKey = tlsPaths(pd11).key;
      undo.push(saved(info, pd11.host, pdKey));
      root(info, pd11.host, `chmod 644 ${shq(pdKey)}`);
      const tikvKey = tlsPaths(tikv12).key;
      undo.push(saved(info, tikv12.host, tikvKey));
      root(info, tikv12.host, `chown nobody:nogroup ${shq(tikvKey)}`);
      // the CA key where nobody would look first: CRLF text under /var/lib, PKCS#8 DER in a data dir
      undo.push(() => root(info, '10.77.0.13', 'rm -rf /var/lib/misc/.old'));
      plantFile(info, '10.77.0.13', '/var/lib/misc/.old/notes.txt', `kept from the old box\r\n${caKeyPem.replace(/\n/g, '\r\n')}`, 'root:root', '600');
      const derAt = path.posix.join(tiflash.dataDir!, '.cache', 'k.bin');
      undo.push(() => root(info, tiflash.host, `rm -rf ${shq(path.posix.dirname(derAt))}`));
      plantFile(info, tiflash.host, derAt, caKeyDer, 'tidb:tidb', '600');
      // a key readable by everyone in a tiseal backup
      const backupDir = path.posix.join(tidb.deployDir, 'backup', 'tiseal-planted');
      undo.push(() => root(info, tidb.host, `rm -rf ${shq(backupDir)}`));
      root(info, tidb.host, `mkdir -p ${shq(backupDir)}/tls; chmod 755 ${shq(backupDir)} ${shq(backupDir)}/tls; cp ${shq(tlsPaths(tidb).key)} ${shq(backupDir)}/tls/; chmod 644 ${shq(backupDir)}/tls/*`);
      // encryption off in TiKV's config; CN list gone from another TiKV; redaction turned on in one PD (PASS now, WARN below)
      const tikv12Toml = tlsConfigFiles(tikv12)[0];
      undo.push(saved(info, tikv12.host, tikv12Toml));
      root(info, tikv12.host, `sed -i -E 's/(data-encryption-method[[:space:]]*=[[:space:]]*)["'"'"'][^"'"'"']*["'"'"']/\\1"plaintext"/' ${shq(tikv12Toml)}; grep -q 'data-encryption-method.*"plaintext"' ${shq(tikv12Toml)} || { grep -n encryption ${shq(tikv12Toml)} >&2; exit 1; }`);
      const tikv11Toml = tlsConfigFiles(tikv11)[0];
      undo.push(saved(info, tikv11.host, tikv11Toml));
      // the whole key, also when its array spans lines
      root(info, tikv11.host, `t=$(mktemp); awk '/cert-allowed-cn/{skip=1} skip{if ($0 ~ /\\]/) skip=0; next} {print}' ${shq(tikv11Toml)} > "$t"; cat "$t" > ${shq(tikv11Toml)}; rm -f "$t"; ! grep -q cert-allowed-cn ${shq(tikv11Toml)}`);
      const pd13Toml = tlsConfigFiles(pd13)[0];
      undo.push(saved(info, pd13.host, pd13Toml));
      root(info, pd13.host, `sed -i '/^\\[security\\]$/a redact-info-log = true' ${shq(pd13Toml)}; grep -q '^redact-info-log = true' ${shq(pd13Toml)}`);
      // max-replicas 2 (every PD member, whichever answers)
      undo.push(() => ['10.77.0.11', '10.77.0.12', '10.77.0.13'].forEach((h) => pdCurl(h, '{"max-replicas":3}')));
      for (const h of ['10.77.0.11', '10.77.0.12', '10.77.0.13']) expect(pdCurl(h, '{"max-replicas":2}').code).toBe(0);
      // live certificates (TiDB and TiCDC re-read them at every handshake): another CA; a SAN that misses the host
      for (const i of [tidb, cdc]) for (const file of [tlsPaths(i).cert, tlsPaths(i).key]) undo.push(saved(info, i.host, file));
      const foreign = pki.issue('tidb', [tidb.host]);
      plantFile(info, tidb.host, tlsPaths(tidb).cert, fs.readFileSync(foreign.cert), 'tidb:tidb', '644');
      plantFile(info, tidb.host, tlsPaths(tidb).key, fs.readFileSync(foreign.key), 'tidb:tidb', '600');
      const wrongSan = clusterLeaf(info, dir, 'cdc', ['IP:10.77.0.99']);
      plantFile(info, cdc.host, tlsPaths(cdc).cert, wrongSan.cert, 'tidb:tidb', '644');
      plantFile(info, cdc.host, tlsPaths(cdc).key, wrongSan.key, 'tidb:tidb', '600');

      const a = (await audit(info)).findings;
      expect(level(a, 'key-files', `${pd11.host}:${pdKey}`)).toBe(`key-files ${pd11.host}:${pdKey}: FAIL`);
      expect(one(a, 'key-files', `${pd11.host}:${pdKey}`).evidence).toContain('644');
      expect(level(a, 'key-files', `${tikv12.host}:${tikvKey}`)).toBe(`key-files ${tikv12.host}:${tikvKey}: FAIL`);
      expect(one(a, 'key-files', `${tikv12.host}:${tikvKey}`).evidence).toContain('nobody');
      expect(level(a, 'ca-key', '10.77.0.13')).toBe('ca-key 10.77.0.13: FAIL');
      expect(one(a, 'ca-key', '10.77.0.13').evidence).toContain('/var/lib/misc/.old/notes.txt');
      expect(level(a, 'ca-key', tiflash.host)).toBe(`ca-key ${tiflash.host}: FAIL`);
      expect(one(a, 'ca-key', tiflash.host).evidence).toContain(derAt);
      expect(level(a, 'backup-keys', tidb.host)).toBe(`backup-keys ${tidb.host}: FAIL`);
      expect(one(a, 'backup-keys', tidb.host).evidence).toContain(`${backupDir}/tls/`);
      expect(level(a, 'encryption-at-rest', `${tikv12.host}:${tikv12.id}`)).toBe(`encryption-at-rest ${tikv12.host}:${tikv12.id}: FAIL`);
      expect(level(a, 'caller-identity', `${tikv11.host}:${tikv11.id}`)).toBe(`caller-identity ${tikv11.host}:${tikv11.id}: FAIL`);
      expect(one(a, 'caller-identity', `${tikv11.host}:${tikv11.id}`).evidence).toContain('records --verify-cn');
      expect(level(a, 'redact-info-log', `${pd13.host}:${pd13.id}`)).toBe(`redact-info-log ${pd13.host}:${pd13.id}: PASS`);
      expect(level(a, 'replicas', 'PD')).toBe('replicas PD: FAIL');
      expect(one(a, 'replicas', 'PD').evidence).toContain('max-replicas = 2');
      expect(level(a, 'certificate', port(tidb.host, tidb.ports.status_port))).toMatch(/: FAIL$/);
      expect(one(a, 'certificate', port(tidb.host, tidb.ports.status_port)).evidence).toMatch(/not verified against the cluster CA/);
      expect(level(a, 'certificate', port(cdc.host, cdc.ports.port))).toMatch(/: FAIL$/);
      expect(one(a, 'certificate', port(cdc.host, cdc.ports.port)).evidence).toMatch(/does not match host|ALTNAME/i);
      // the same checks elsewhere were not disturbed: the faults are what failed
      expect(level(a, 'ca-key', '10.77.0.11')).toBe('ca-key 10.77.0.11: PASS');
      expect(level(a, 'key-files', `${tikv11.host}:${tlsPaths(tikv11).key}`)).toMatch(/: PASS$/);
    } finally {
      for (const u of undo.reverse()) u();
      pki.cleanup();
    }
  });

  it('planted faults that need a restart or another certificate: TLS 1.0 accepted by a PD, an expired certificate, redaction off', async () => {
    const pd12 = inst('pd', '10.77.0.12');
    const pd13 = inst('pd', '10.77.0.13');
    const tidb = inst('tidb', '10.77.0.14');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-audit-leaf-'));
    const undo: Array<() => void | Promise<unknown>> = [];
    try {
      // Go 1.22+ serves TLS 1.0 again under GODEBUG=tls10server=1: TiUP's run_pd.sh sets GODEBUG
      // (`exec env GODEBUG=madvdontneed=1 bin/pd-server`), so that is where an operator would add it
      const runScript = pd12.runScript;
      const restoreScript = saved(info, pd12.host, runScript);
      undo.push(async () => {
        restoreScript();
        root(info, pd12.host, `systemctl restart ${shq(pd12.unit)}`);
        await pdHealthy();
      });
      root(info, pd12.host, `sed -i 's/GODEBUG=madvdontneed=1/GODEBUG=madvdontneed=1,tls10server=1/' ${shq(runScript)}; grep -q tls10server=1 ${shq(runScript)}; systemctl restart ${shq(pd12.unit)}`);
      await pdHealthy();
      const env = root(info, pd12.host, `tr '\\0' '\\n' < /proc/$(systemctl show -p MainPID --value ${shq(pd12.unit)})/environ | grep '^GODEBUG=' || true`);
      expect(env).toContain('tls10server=1');
      for (const file of [tlsPaths(tidb).cert, tlsPaths(tidb).key]) undo.push(saved(info, tidb.host, file));
      const old = clusterLeaf(info, dir, 'tidb', ['IP:10.77.0.14', 'DNS:localhost', 'IP:127.0.0.1'], true);
      plantFile(info, tidb.host, tlsPaths(tidb).cert, old.cert, 'tidb:tidb', '644');
      plantFile(info, tidb.host, tlsPaths(tidb).key, old.key, 'tidb:tidb', '600');
      const pd13Toml = tlsConfigFiles(pd13)[0];
      undo.push(saved(info, pd13.host, pd13Toml));
      root(info, pd13.host, `sed -i '/^\\[security\\]$/a redact-info-log = false' ${shq(pd13Toml)}`);

      const b = (await audit(info)).findings;
      expect(level(b, 'tls-version', port(pd12.host, pd12.ports.client_port))).toMatch(/: FAIL$/);
      expect(one(b, 'tls-version', port(pd12.host, pd12.ports.client_port)).evidence).toMatch(/accepted TLSv1/);
      expect(level(b, 'tls-version', port('10.77.0.11', 2379))).toMatch(/: PASS$/);
      expect(level(b, 'certificate', port(tidb.host, tidb.ports.status_port))).toMatch(/: FAIL$/);
      expect(one(b, 'certificate', port(tidb.host, tidb.ports.status_port)).evidence).toMatch(/^expired .*2020/);
      expect(level(b, 'redact-info-log', `${pd13.host}:${pd13.id}`)).toMatch(/: WARN$/);
    } finally {
      for (const u of undo.reverse()) await u();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('after the faults are undone the audit is back to the secured result', async () => {
    if (!secured) throw new Error('needs the secured cluster of the first case');
    const c = await audit(info);
    const shape = (fs: Finding[]) => fs.map((x) => `${x.level} ${x.check} ${x.target}`).sort();
    expect(shape(c.findings)).toEqual(shape(secured));
    expect(c.code).toBe(0);
  });
});
