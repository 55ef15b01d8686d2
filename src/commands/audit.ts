import * as TOML from '@iarna/toml';
import * as fs from 'fs';
import * as tls from 'tls';
import * as path from 'path';
import { securityKeyNames, TomlTable, tlsConfigFiles, tlsPaths } from '../components';
import { pdAllowListSkipped } from '../components/callers';
import { encryptionConfigFile, readEncryption } from '../components/encryption';
import { UsageError } from '../errors';
import { probeTls } from '../net/probe';
import type { GlobalOptions } from '../options';
import { CertStore } from '../pki';
import { PdClient } from '../pd/client';
import { executorFor } from '../tasks/context';
import { readRemoteText } from '../tasks/remote';
import { CERT_ROLES } from '../tasks/certs/stage';
import { pdInstances } from '../topology';
import { mapLimit, readConcurrency } from '../util/concurrency';
import { backupScanScript, judgeBackups } from '../audit/backupScan';
import { caKeyDigests, caKeyScanScript, DEFAULT_SCAN_LIMITS, parseScan } from '../audit/caKeyScan';
import { ClusterMeta, readMeta } from '../state/meta';
import { OpenedCluster, openCluster, recordedTls } from './cluster';
import { clusterPdVersion, collectStatus, InstanceStatus, WARN_DAYS } from './tls/status';
import { sqlTlsFindings } from '../audit/sql-tls';
import { collectSqlTlsStatus } from './sql-tls/status';
import { SqlCredentials, sqlCredentials } from '../sql/session';

/** One finding of `tiseal audit` (schema: docs/audit.schema.json). */
export interface Finding {
  check: string;
  level: 'PASS' | 'WARN' | 'FAIL';
  target: string;
  evidence: string;
  fix?: string;
}

const TLS_FIX = 'turn on TLS between components: tiseal tls enable <topology>';

/**
 * The caller-identity finding of one instance on TLS whose config has a CN setting. A PD before
 * v8.4.0 without a list is tiseal's decision under --verify-cn (pdAllowListSkipped), so a WARN
 * that says why, not the FAIL of a list gone missing.
 */
export function callerIdentityFinding(st: Pick<InstanceStatus, 'role' | 'allowedCn'>, target: string, o: { verifyCnRecorded: boolean; metaFile: string; pdVersion?: string }): Finding {
  const cns = st.allowedCn;
  if (cns?.length) return { check: 'caller-identity', level: 'PASS', target, evidence: `allows CNs ${cns.join(', ')}` };
  const skipped = st.role === 'pd' ? pdAllowListSkipped(o.pdVersion) : undefined;
  if (skipped) return { check: 'caller-identity', level: 'WARN', target, evidence: `no CN allow-list: ${skipped}`, fix: 'upgrade PD to v8.4.0 or later, then tiseal tls enable --verify-cn' };
  // Recorded with --verify-cn, a missing list is a regression from what was verified: FAIL.
  return { check: 'caller-identity', level: o.verifyCnRecorded ? 'FAIL' : 'WARN', target, evidence: `no CN allow-list: any certificate from the CA is accepted${o.verifyCnRecorded ? `, although ${o.metaFile} records --verify-cn` : ''}`, fix: 'tiseal tls enable --verify-cn' };
}

/** Exit code: 1 when any FAIL (or any WARN with --fail-on warn), else 0. */
export const auditExitCode = (findings: Finding[], failOn: 'fail' | 'warn') => (findings.some((f) => f.level === 'FAIL' || (failOn === 'warn' && f.level === 'WARN')) ? 1 : 0);

/** `open`: how the cluster is opened (its SSH pool); tests pass one over a FakePool. */
export async function runAudit(topologyFile: string, opts: GlobalOptions, creds: SqlCredentials = { user: 'root', password: '' }, open: (file: string, opts: GlobalOptions) => Promise<OpenedCluster> = openCluster): Promise<Finding[]> {
  const opened = await open(topologyFile, opts);
  const { topology, cluster, pool, close } = opened;
  const findings: Finding[] = [];
  const add = (f: Finding) => findings.push(f);
  try {
    const status = await collectStatus(opened, opts);
    const store = new CertStore(opts.stateDir, cluster.name);
    const ca = store.hasCA() ? store.loadCA({ allowExpired: true }) : undefined;
    const client = ca ? store.loadClient() : null;
    const byKey = new Map(status.instances.map((i) => [`${i.id}@${i.host}`, i]));
    const ctx = { pool };
    const verifyCnRecorded = readMetaSafe(cluster.metaFile)?.verifyCn === true;
    let pdVersion: Promise<string | undefined> | undefined;
    const pdVersionOnce = () =>
      (pdVersion ??= clusterPdVersion(topology, () => new PdClient(pdInstances(topology).map((p) => `${p.host}:${p.ports.client_port}`), client && ca ? { ca: ca.bundlePem, cert: client.certPem, key: client.keyPem } : undefined, { tlsOnly: 'PD is configured for TLS' })));

    // 1-2, 4-5: transport, per port
    for (const inst of topology.instances) {
      const st = byKey.get(`${inst.id}@${inst.host}`);
      const target = `${inst.host}:${inst.id}`;
      for (const p of st?.ports ?? []) {
        const where = `${inst.host}:${p.port} (${inst.role} ${p.name})`;
        if (p.live === 'closed') {
          add({ check: 'tls', level: 'WARN', target: where, evidence: `nothing answered: ${p.error ?? ''}`.trim(), fix: `is ${inst.unit} running?` });
          continue;
        }
        add(p.live === 'tls' ? { check: 'tls', level: 'PASS', target: where, evidence: `TLS (${p.protocol ?? '?'})` } : { check: 'tls', level: 'FAIL', target: where, evidence: 'speaks plaintext', fix: TLS_FIX });
        if (p.live !== 'tls') continue;
        // mTLS: a client without a certificate must not get through where the component requires one
        const refusedAnon = await anonymousRefused(inst.host, p.port, ca?.bundlePem);
        const mustRequire = ['pd', 'tikv', 'tiflash'].includes(inst.role) && p.name !== 'status_port' && p.name !== 'flash_proxy_status_port';
        if (mustRequire) add(refusedAnon ? { check: 'mtls', level: 'PASS', target: where, evidence: 'a client without a certificate is refused' } : { check: 'mtls', level: 'FAIL', target: where, evidence: 'a client without a certificate was served', fix: `set the CA path in ${inst.role}'s [security] (tiseal tls enable)` });
        // old protocol versions
        const old = await probeTls(inst.host, p.port, { ca: ca?.bundlePem, cert: client?.certPem, key: client?.keyPem, minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
        add(old.kind === 'tls' && old.protocol && /TLSv1(\.1)?$/.test(old.protocol) ? { check: 'tls-version', level: 'FAIL', target: where, evidence: `accepted ${old.protocol}`, fix: 'upgrade the component; TLS 1.2 is the minimum' } : { check: 'tls-version', level: 'PASS', target: where, evidence: 'TLS 1.0/1.1 refused' });
        // certificate
        if (!p.verified && /CERT_HAS_EXPIRED|certificate has expired/i.test(p.error ?? '')) add({ check: 'certificate', level: 'FAIL', target: where, evidence: `expired ${p.notAfter ?? ''}`.trim(), fix: 'tiseal tls rotate' });
        else if (!p.verified) add({ check: 'certificate', level: 'FAIL', target: where, evidence: `not verified against ${ca ? 'the cluster CA' : 'any local CA'}: ${p.error ?? ''}`.trim(), fix: 'tiseal tls rotate (or tls enable) to reissue from the cluster CA' });
        else if ((p.daysLeft ?? 0) < 0) add({ check: 'certificate', level: 'FAIL', target: where, evidence: `expired ${p.notAfter}`, fix: 'tiseal tls rotate' });
        else if ((p.daysLeft ?? 0) < WARN_DAYS) add({ check: 'certificate', level: 'WARN', target: where, evidence: `expires in ${p.daysLeft} days`, fix: 'tiseal tls rotate' });
        else add({ check: 'certificate', level: 'PASS', target: where, evidence: `issued by the cluster CA, SANs cover ${inst.host}, ${p.daysLeft} days left` });
      }
      // PD started with --force-new-cluster by its next restart (status read it from the host)
      if (inst.role === 'pd') {
        const forced = st?.problems.find((x) => x.includes('--force-new-cluster'));
        add(forced ? { check: 'pd-force-new-cluster', level: 'FAIL', target, evidence: forced, fix: 'run any changing tiseal verb (e.g. tls enable again): its first step repairs it' } : { check: 'pd-force-new-cluster', level: 'PASS', target, evidence: 'run_pd.sh has no --force-new-cluster, no forced PD runs' });
      }
      // 3: caller identity (files with a CN setting only: ngmonitoring.toml has none)
      const cfg = tlsConfigFiles(inst)[0];
      if (cfg && securityKeyNames(inst.role, path.posix.basename(cfg))?.allowedCn && st?.configured === 'on') {
        const pdVersion = inst.role === 'pd' && !st.allowedCn?.length ? await pdVersionOnce() : undefined;
        add(callerIdentityFinding(st, target, { verifyCnRecorded, metaFile: cluster.metaFile, pdVersion }));
      }
    }

    // 6: key files on hosts, key material in backups, and the CA key nowhere
    const caKey = ca && fs.existsSync(store.caKeyPath) ? caKeyDigests(fs.readFileSync(store.caKeyPath, 'utf8')) : undefined;
    await mapLimit(topology.hosts, readConcurrency(opts), async ({ host, sshPort }) => {
      const exec = await pool.get(host, sshPort);
      const onHost = topology.instances.filter((i) => i.host === host);
      const here = onHost.filter((i) => CERT_ROLES.has(i.role));
      for (const inst of here) {
        const key = tlsPaths(inst).key;
        const s = await exec.stat(key, { sudo: true });
        if (!s.exists) continue;
        add((s.mode & 0o777) === 0o600 && s.owner === topology.global.user ? { check: 'key-files', level: 'PASS', target: `${host}:${key}`, evidence: `0600 ${s.owner}` } : { check: 'key-files', level: 'FAIL', target: `${host}:${key}`, evidence: `${(s.mode & 0o777).toString(8)} ${s.owner}`, fix: `chmod 600 and chown ${topology.global.user} (tiseal tls enable repairs it)` });
      }
      const deployDirs = [...new Set(onHost.map((i) => i.deployDir))];
      const backups = judgeBackups((await exec.exec('bash -s', { sudo: true, stdin: backupScanScript(deployDirs), allowFailure: true, timeoutMs: 60_000 })).stdout, ['root', topology.global.user]);
      add(
        backups.problems.length
          ? { check: 'backup-keys', level: 'FAIL', target: host, evidence: `key material readable beyond its owner in backups: ${backups.problems.map((p) => `${p.file} (${p.why})`).join('; ')}`, fix: 'chmod 600 the files and 700 their directories, or delete the backups once the run is verified' }
          : { check: 'backup-keys', level: 'PASS', target: host, evidence: backups.keys.length ? `${backups.keys.length} backed-up key file(s), each 0600 in 0700 directories` : 'no key material in tiseal backups' },
      );
      if (caKey) {
        // Every path: the CA key copied anywhere on a host is a FAIL, not only under the usual dirs.
        const roots = ['/', ...deployDirs, ...new Set(onHost.flatMap((i) => [...(i.dataDirs ?? (i.dataDir ? [i.dataDir] : [])), i.logDir]))];
        const r = await exec.exec('bash -s', { sudo: true, stdin: caKeyScanScript(roots, caKey.derSizes, DEFAULT_SCAN_LIMITS), allowFailure: true, timeoutMs: (DEFAULT_SCAN_LIMITS.timeoutSec + 120) * 1000 });
        const scan = parseScan(r.stdout, caKey);
        const bounded = scan.timedOut || scan.truncated || r.code !== 0;
        add(
          scan.found.length
            ? { check: 'ca-key', level: 'FAIL', target: host, evidence: `the CA private key is on this host: ${scan.found.join(', ')}`, fix: 'delete it there; the CA key belongs only on the control machine' }
            : bounded
              ? { check: 'ca-key', level: 'WARN', target: host, evidence: `search incomplete (${scan.timedOut ? `walk stopped after ${DEFAULT_SCAN_LIMITS.timeoutSec} s` : scan.truncated ? `more than ${DEFAULT_SCAN_LIMITS.maxFiles} candidate files` : `exit ${r.code}: ${r.stderr.trim().slice(0, 200)}`}); no copy among ${scan.candidates} candidate files`, fix: 'look for stray *.key / *.pem files on this host' }
              : { check: 'ca-key', level: 'PASS', target: host, evidence: `the CA private key is not on this host (${scan.candidates} candidate key files compared by SHA-256)` },
        );
      }
    });

    // 7: encryption at rest
    for (const inst of topology.instances) {
      const file = encryptionConfigFile(inst);
      if (!file) continue;
      const text = await readRemoteText(await executorFor(ctx, inst), file);
      const enc = text ? readEncryption(TOML.parse(text) as TomlTable) : { method: 'plaintext' };
      add(enc.method !== 'plaintext' ? { check: 'encryption-at-rest', level: 'PASS', target: `${inst.host}:${inst.id}`, evidence: `${enc.method}, master key ${enc.masterKey ?? '?'}` } : { check: 'encryption-at-rest', level: 'FAIL', target: `${inst.host}:${inst.id}`, evidence: 'data-encryption-method is plaintext', fix: 'tiseal encrypt enable <topology>' });
    }

    // 8: replication
    const clientTls = client && ca ? { ca: ca.bundlePem, cert: client.certPem, key: client.keyPem } : undefined;
    // Recorded or configured as TLS: an http answer on PD's port is not PD's.
    const pdConfiguredTls = status.instances.some((i) => i.role === 'pd' && i.configured === 'on');
    const tlsOnly = recordedTls(cluster) ?? (pdConfiguredTls ? 'PD is configured for TLS' : undefined);
    const pd = new PdClient(pdInstances(topology).map((p) => `${p.host}:${p.ports.client_port}`), clientTls, { tlsOnly });
    try {
      const res = await pd.call('GET', '/pd/api/v1/config/replicate');
      const replicas = Number(JSON.parse(res.body)['max-replicas']);
      add(replicas >= 3 ? { check: 'replicas', level: 'PASS', target: 'PD', evidence: `max-replicas = ${replicas}` } : { check: 'replicas', level: 'FAIL', target: 'PD', evidence: `max-replicas = ${replicas}: losing one store can lose data`, fix: 'pd-ctl config set max-replicas 3' });
    } catch (e) {
      add({ check: 'replicas', level: 'WARN', target: 'PD', evidence: `could not read /pd/api/v1/config/replicate: ${(e as Error).message}` });
    }

    // 9: log redaction
    for (const inst of topology.instances.filter((i) => ['pd', 'tikv', 'tiflash'].includes(i.role))) {
      const file = inst.role === 'tiflash' ? inst.configFiles.find((f) => f.endsWith('/tiflash.toml')) : tlsConfigFiles(inst)[0];
      if (!file) continue;
      const text = await readRemoteText(await executorFor(ctx, inst), file);
      const sec = ((text ? (TOML.parse(text) as TomlTable) : {}).security ?? {}) as TomlTable;
      const v = sec['redact-info-log'] ?? sec['redact_info_log'];
      const on = v === true || v === 'on' || v === 'marker' || v === 'MARKER';
      add(on ? { check: 'redact-info-log', level: 'PASS', target: `${inst.host}:${inst.id}`, evidence: `redact-info-log = ${JSON.stringify(v)}` } : { check: 'redact-info-log', level: 'WARN', target: `${inst.host}:${inst.id}`, evidence: 'user data can appear in info logs', fix: `set [security] ${inst.role === 'tiflash' ? 'redact_info_log' : 'redact-info-log'} = true` });
    }
    // 10: TLS for MySQL clients (src/audit/sql-tls.ts)
    if (topology.instances.some((i) => i.role === 'tidb')) findings.push(...sqlTlsFindings(await collectSqlTlsStatus(opened, opts, creds)));
    return findings;
  } finally {
    await close();
  }
}

function readMetaSafe(file: string): ClusterMeta | undefined {
  try {
    return readMeta(file);
  } catch {
    return undefined;
  }
}

/**
 * Connect without a client certificate and say something. Under TLS 1.3 the server's refusal
 * (a "certificate required" alert) arrives after the client thinks the handshake is done, so
 * wait for an answer: an alert or a close is a refusal, data is being served.
 */
export function anonymousRefused(host: string, port: number, ca: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (refused: boolean) => {
      if (done) return;
      done = true;
      sock.destroy();
      resolve(refused);
    };
    const sock = tls.connect({ host, port, ca, rejectUnauthorized: false, minVersion: 'TLSv1.2' });
    sock.setTimeout(3000, () => finish(false));
    sock.once('secureConnect', () => sock.write('GET / HTTP/1.0\r\n\r\n'));
    sock.once('data', () => finish(false));
    sock.once('error', () => finish(true));
    sock.once('close', () => finish(true));
  });
}

function render(findings: Finding[]): string {
  const rows = findings.map((f) => `${f.level.padEnd(4)}  ${f.check.padEnd(18)} ${f.target}: ${f.evidence}${f.level !== 'PASS' && f.fix ? `\n      fix: ${f.fix}` : ''}`);
  const count = (l: Finding['level']) => findings.filter((f) => f.level === l).length;
  return `${rows.join('\n')}\n\n${count('PASS')} PASS, ${count('WARN')} WARN, ${count('FAIL')} FAIL`;
}

export async function run(topologyFile: string, flags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  const failOn = String(flags.failOn ?? 'fail');
  if (failOn !== 'fail' && failOn !== 'warn') throw new UsageError(`invalid --fail-on '${failOn}'`, 'use fail or warn');
  const findings = await runAudit(topologyFile, opts, sqlCredentials(flags));
  process.stdout.write(opts.json ? JSON.stringify({ findings }, null, 2) + '\n' : render(findings) + '\n');
  return auditExitCode(findings, failOn);
}
