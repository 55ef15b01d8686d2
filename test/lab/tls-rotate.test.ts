/**
 * `tls rotate`: every leaf is reissued and pushed in place, every port serves its new serial
 * (checked with openssl s_client), and no unit restarted (systemd's ActiveEnterTimestamp): TiKV
 * and TiFlash status ports get there through one deliberately failed handshake each. The cluster
 * is enabled with `--key-type ecdsa` (P-256 leaves, which every port serves and a plain rotate
 * keeps), then `tls rotate --key-type rsa` moves every leaf to RSA, still without a restart.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { LabInfo } from '../../lab';
import { describeLab } from './helpers';
import { validate } from '../support/json-schema';
import * as schema from '../../docs/tls-status.schema.json';
import { expectTlsCluster, tlsSay } from './expect-cluster';
import { curl, labOnTls, labTopology, remoteChecksums, runTiseal, sClient, tlsEndpoints, unitStartTimes } from './tiseal';
import { sshOk } from './helpers';
import { agentUnits } from '../../lab/monitoring';
import type { Topology } from '../../src/topology/types';

jest.setTimeout(8 * 60_000);

/** The serial each TLS port serves, read with openssl (verified against the cluster CA). */
function servedSerials(info: LabInfo): Record<string, string> {
  const out: Record<string, string> = {};
  for (const { inst, port } of tlsEndpoints(info)) {
    const r = sClient(info, inst.host, port, ['-showcerts']);
    const verified = r.code === 0 && /Verify return code: 0 \(ok\)/.test(r.out);
    const text = spawnSync('openssl', ['x509', '-noout', '-serial', '-text'], { input: r.cert, encoding: 'utf8' }).stdout;
    const serial = /serial=([0-9A-F]+)/.exec(text)?.[1];
    const key = /Public Key Algorithm: (\S+)/.exec(text)?.[1];
    out[`${inst.host}:${port}`] = verified && serial ? serial : `unverified: ${r.out.slice(-200)}`;
    keyTypes[`${inst.host}:${port}`] = key ?? 'none';
  }
  return out;
}

/** The public key algorithm of the certificate each port served at the last servedSerials(). */
const keyTypes: Record<string, string> = {};
const servedKeyTypes = (): string[] => [...new Set(Object.values(keyTypes))];

/** Runs `fn` with the monitoring host's blackbox exporter stopped, and starts it again after. */
async function withoutPortProbes<T>(info: LabInfo, t: Topology, fn: () => Promise<T>): Promise<T> {
  const unit = agentUnits(t)[1];
  const hosts = [...new Set(t.instances.filter((i) => i.role === 'prometheus').map((i) => i.host))];
  for (const h of hosts) sshOk(info, h, `sudo -n systemctl stop ${unit}`);
  try {
    return await fn();
  } finally {
    for (const h of hosts) sshOk(info, h, `sudo -n systemctl start ${unit} && systemctl is-active ${unit}`);
  }
}

/**
 * `openssl s_client -verify_hostname`: connected by the extra names the leaves were issued with at
 * enable (a rotate is given no --extra-san: the names must survive it), and refused by a name a
 * host was not given.
 */
function expectExtraSans(info: LabInfo): void {
  const verified = (host: string, port: number, name: string) => {
    const r = sClient(info, host, port, ['-verify_hostname', name]);
    return `${host}:${port} as ${name}: ${r.code === 0 && /Verify return code: 0 \(ok\)/.test(r.out) ? 'verified' : `refused (${(/verify error:[^\n]*/.exec(r.out) ?? ['?'])[0]})`}`;
  };
  expect(verified('10.77.0.11', 2379, 'lb.lab.internal')).toBe('10.77.0.11:2379 as lb.lab.internal: verified');
  expect(verified('10.77.0.14', 10080, 'lb.lab.internal')).toBe('10.77.0.14:10080 as lb.lab.internal: verified');
  expect(verified('10.77.0.14', 10080, 'db.lab.internal')).toBe('10.77.0.14:10080 as db.lab.internal: verified');
  expect(verified('10.77.0.11', 2379, 'db.lab.internal')).toMatch(/^10\.77\.0\.11:2379 as db\.lab\.internal: refused \(verify error:num=62:hostname mismatch/);
}

describeLab('tiseal tls rotate on the lab', () => {
  let info: LabInfo;

  beforeAll(async () => {
    // --extra-san: a name for every leaf (a load balancer's) and one for one host only.
    info = await labOnTls(['--key-type', 'ecdsa', '--extra-san', 'lb.lab.internal', '10.77.0.14=db.lab.internal']);
  }, 15 * 60_000);

  it('changes every served serial without restarting anything', async () => {
    const t = labTopology(info);
    const before = servedSerials(info);
    for (const v of Object.values(before)) expect(v).toMatch(/^[0-9A-F]+$/);
    expect(servedKeyTypes()).toEqual(['id-ecPublicKey']); // enable --key-type ecdsa: P-256 everywhere
    const started = unitStartTimes(info, t);

    const files = remoteChecksums(info);
    const dry = await runTiseal(info, ['tls', 'rotate', info.topologyFile, '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/would tikv-20160 on 10\.77\.0\.11: new tikv\.pem, then tikv\.crt/);
    expect(dry.stdout).toMatch(/would tikv-20160 on 10\.77\.0\.11: make status_port 20180 reload with one deliberately failed TLS handshake/);
    expect(remoteChecksums(info)).toBe(files);

    // TiKV's and the TiFlash proxy's status servers reload only after a failed handshake (issue #12 item 7).
    // Prometheus's blackbox exporter fails one too: TiUP's `tidb_port_probe` tcp_connects every TiKV
    // status port each 30 s, so on CI it sometimes reloaded a store before tiseal's own handshake.
    // Paused here so every reload is tiseal's; the second test rotates with it running.
    const r = await withoutPortProbes(info, t, () => runTiseal(info, ['tls', 'rotate', info.topologyFile, '--yes']));
    if (r.code !== 0) throw new Error(`rotate failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    expect(r.stdout).toMatch(/nothing restarted/);
    const stores = t.instances.filter((i) => i.role === 'tikv' || i.role === 'tiflash').length;
    expect(r.stdout).toContain(`nothing restarted (${stores} TiKV/TiFlash status port(s) reloaded after a deliberately failed TLS handshake`);

    const after = servedSerials(info);
    for (const [ep, serial] of Object.entries(after)) {
      expect(serial).toMatch(/^[0-9A-F]+$/);
      expect(`${ep} ${serial}`).not.toBe(`${ep} ${before[ep]}`);
    }
    expect(servedKeyTypes()).toEqual(['id-ecPublicKey']); // a rotate keeps each leaf's type
    expect(unitStartTimes(info, t)).toEqual(started);
    expectTlsCluster(info);

    // tls status --json: documented schema, every port verified, serials as openssl sees them
    const st = await runTiseal(info, ['tls', 'status', info.topologyFile, '--json']);
    expect(st.code).toBe(0);
    const report = JSON.parse(st.stdout);
    expect(validate(schema, report)).toEqual([]);
    expect(report.level).toBe('ok');
    expectExtraSans(info);
    // a client certificate for a person, from `cert client`, is accepted by PD and TiKV's gRPC port (both demand one)
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-cc-'));
    try {
      const cc = await runTiseal(info, ['cert', 'client', info.topologyFile, '--cn', 'ops-alice', '--out', out, '--json']);
      expect(cc.code).toBe(0);
      const pem = (f: string) => path.join(out, f);
      expect(curl(['--cacert', pem('ca.crt'), '--cert', pem('ops-alice.crt'), '--key', pem('ops-alice.key'), 'https://10.77.0.11:2379/pd/api/v1/health']).out).toMatch(/"health": ?true/);
      expect(tlsSay(info, '10.77.0.12', 20160, 'ping', { cert: pem('ops-alice.crt'), key: pem('ops-alice.key') }, pem('ca.crt'))).toMatch(/pong tikv/);
      // The ready-to-paste commands, run: curl and etcdctl exactly as printed (through sh); pd-ctl,
      // tikv-ctl and tidb-ctl (tiup ctl, not installable here) as the call each makes with its flags.
      const cmds = (JSON.parse(cc.stdout) as { commands: Record<string, string> }).commands;
      const sh = (line: string) => spawnSync('sh', ['-c', line], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ETCDCTL_API: '3' } });
      const asPrinted = sh(cmds.curl);
      expect(`${asPrinted.status} ${asPrinted.stdout}`).toMatch(/^0 [\s\S]*"members"/);
      const members = sh(cmds.etcdctl);
      expect(`${members.status} ${members.stderr}`).toBe('0 ');
      expect(members.stdout.trim().split('\n')).toHaveLength(3);
      /** The flags of a printed command, split by sh itself: `--flag value` pairs after the tool name. */
      const flags = (line: string, tool: string): Record<string, string> => {
        const argv = sh(`set -- ${line.slice(line.indexOf(` ${tool} `) + tool.length + 2)}; printf '%s\\n' "$@"`).stdout.trim().split('\n');
        return Object.fromEntries(argv.flatMap((a, i) => (a.startsWith('-') ? [[a.replace(/^-+/, ''), argv[i + 1]]] : [])));
      };
      const pd = flags(cmds.pdCtl, 'pd');
      expect(curl(['--cacert', pd.cacert, '--cert', pd.cert, '--key', pd.key, `${pd.u}/pd/api/v1/health`]).out).toMatch(/"health": ?true/);
      const kv = flags(cmds.tikvCtl, 'tikv');
      const [kvHost, kvPort] = kv.host.split(':');
      expect(tlsSay(info, kvHost, Number(kvPort), 'ping', { cert: kv['cert-path'], key: kv['key-path'] }, kv['ca-path'])).toMatch(/pong tikv/);
      const db = flags(cmds.tidbCtl, 'tidb');
      expect(curl(['--cacert', db.ca, '--cert', db['ssl-cert'], '--key', db['ssl-key'], `https://${db.host}:${db.port}/status`]).out).toMatch(/"version"/);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
    for (const i of report.instances) for (const p of i.ports) expect(`${i.host}:${p.port} ${p.serial?.toUpperCase().replace(/^0+/, '')}`).toBe(`${i.host}:${p.port} ${after[`${i.host}:${p.port}`].replace(/^0+/, '')}`);
  });

  it('audit passes on the ECDSA cluster; rotate --key-type rsa moves every leaf to RSA without a restart', async () => {
    const t = labTopology(info);
    // Every TLS and key check passes with P-256 leaves (encryption at rest is off in this lab: FAIL there is right).
    const au = await runTiseal(info, ['audit', info.topologyFile, '--json']);
    const findings = (JSON.parse(au.stdout) as { findings: Array<{ check: string; level: string; target: string; evidence: string }> }).findings;
    const tlsChecks = ['tls', 'mtls', 'tls-version', 'certificate', 'key-files', 'ca-key'];
    expect(findings.filter((f) => tlsChecks.includes(f.check) && f.level !== 'PASS').map((f) => `${f.check} ${f.target}: ${f.evidence}`)).toEqual([]);
    for (const c of ['tls', 'certificate', 'key-files', 'ca-key']) expect(`${c}: ${findings.some((f) => f.check === c && f.level === 'PASS')}`).toBe(`${c}: true`);
    const started = unitStartTimes(info, t);
    const r = await runTiseal(info, ['tls', 'rotate', info.topologyFile, '--key-type', 'rsa', '--yes']);
    if (r.code !== 0) throw new Error(`rotate --key-type rsa failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
    expect(r.stdout).toMatch(/nothing restarted/);
    for (const v of Object.values(servedSerials(info))) expect(v).toMatch(/^[0-9A-F]+$/);
    expect(servedKeyTypes()).toEqual(['rsaEncryption']);
    expectExtraSans(info);
    expect(unitStartTimes(info, t)).toEqual(started);
    expect((await runTiseal(info, ['tls', 'status', info.topologyFile])).code).toBe(0);
  });
});
