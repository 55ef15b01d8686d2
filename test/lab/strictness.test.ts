/**
 * The emulated components are strict the way the real ones are, observed on the lab through
 * systemd, their logs, curl and PD's API. These tests break parts of the cluster on purpose; the
 * last test resets it with labReset and checks the fresh plaintext cluster is healthy.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import { labReset, labStatus, LabInfo } from '../../lab';
import { emulatorWrapper } from '../../lab/emulators/wrapper';
import { renderConfig, renderRunScript, renderSystemdUnit } from '../../src/render';
import { loadTopology, parseTopology } from '../../src/topology';
import type { Instance, Topology } from '../../src/topology/types';
import { makePki, TestPki } from './certs';
import { describeLab, ensureLab, putFile, sshOk, storeStates, waitUntil } from './helpers';

describeLab('emulator strictness on the lab', () => {
  let info: LabInfo;
  let topo: Topology;
  let pki: TestPki;
  const on = (role: string, host: string): Instance => topo.instances.find((i) => i.role === role && i.host === host)!;
  /** Everything the instance wrote to its log dir (log file and the run script's stderr file). */
  const logs = (i: Instance): string => sshOk(info, i.host, `sudo -n sh -c 'cat ${i.logDir}/* 2>/dev/null' || true`);
  const state = (i: Instance): string => sshOk(info, i.host, `systemctl show -p ActiveState -p ExecMainStatus ${i.unit}`);
  const installCerts = (i: Instance, name: string): void => {
    const c = pki.issue(name, [i.host]);
    putFile(info, i.host, `${i.deployDir}/tls/ca.crt`, fs.readFileSync(pki.ca, 'utf8'));
    putFile(info, i.host, `${i.deployDir}/tls/${name}.crt`, fs.readFileSync(c.cert, 'utf8'));
    putFile(info, i.host, `${i.deployDir}/tls/${name}.pem`, fs.readFileSync(c.key, 'utf8'), { mode: '600' });
  };
  const restartWithFreshLogs = (i: Instance): void => {
    sshOk(info, i.host, `sudo -n systemctl stop ${i.unit} && sudo -n sh -c 'for f in ${i.logDir}/*; do : > "$f"; done' && sudo -n systemctl start ${i.unit}`);
  };

  beforeAll(async () => {
    info = await ensureLab();
    topo = loadTopology(info.topologyFile);
    pki = makePki();
  }, ensureLab.timeoutMs);
  afterAll(() => pki?.cleanup());

  test('TiKV with only ca-path set refuses to start with TiKV\'s message', async () => {
    const kv = on('tikv', '10.77.0.12');
    installCerts(kv, 'tikv');
    const conf = sshOk(info, kv.host, `cat ${kv.deployDir}/conf/tikv.toml`);
    putFile(info, kv.host, `${kv.deployDir}/conf/tikv.toml`, `${conf}\n[security]\nca-path = "${kv.deployDir}/tls/ca.crt"\n`);
    restartWithFreshLogs(kv);
    const log = await waitUntil('TiKV to report the incomplete TLS config', 30_000, () => {
      const l = logs(kv);
      return l.includes('ca, cert and private key should be all configured') ? l : undefined;
    });
    expect(log).toMatch(/FATAL/);
    const s = await waitUntil('the unit to be down', 20_000, () => {
      const st = state(kv);
      return /ActiveState=active\n/.test(st) ? undefined : st;
    });
    expect(s).toMatch(/ExecMainStatus=[1-9]/); // exited non-zero; Restart=always keeps retrying
  }, 60_000);

  test('a PD with TLS config rejects a client without a certificate (curl)', async () => {
    // A separate one-member PD on .11 (ports 2479/2480) so the main cluster keeps running.
    const t2 = parseTopology(
      [
        'global:',
        '  user: tidb',
        '  deploy_dir: /tidb-deploy',
        '  data_dir: /tidb-data',
        'server_configs:',
        '  pd:',
        '    security.cacert-path: /tidb-deploy/pd-2479/tls/ca.crt',
        '    security.cert-path: /tidb-deploy/pd-2479/tls/pd.crt',
        '    security.key-path: /tidb-deploy/pd-2479/tls/pd.pem',
        'pd_servers:',
        '  - host: 10.77.0.11',
        '    name: tls-probe',
        '    client_port: 2479',
        '    peer_port: 2480',
      ].join('\n'),
      'tls-probe.yaml',
    );
    const pd = t2.instances[0];
    sshOk(info, pd.host, `sudo -n install -d -o tidb -g tidb ${pd.deployDir} ${pd.deployDir}/bin ${pd.deployDir}/conf ${pd.deployDir}/scripts ${pd.logDir} ${pd.dataDir}`);
    installCerts(pd, 'pd');
    putFile(info, pd.host, `${pd.deployDir}/bin/pd-server`, emulatorWrapper('pd-server', { version: 'v8.5.1' }), { mode: '755' });
    putFile(info, pd.host, pd.runScript, renderRunScript(pd, t2, { tls: true }), { mode: '755' });
    for (const [p, c] of Object.entries(renderConfig(pd, t2))) putFile(info, pd.host, p, c);
    putFile(info, pd.host, `/etc/systemd/system/${pd.unit}`, renderSystemdUnit(pd, t2), { owner: 'root:root' });
    sshOk(info, pd.host, `sudo -n systemctl daemon-reload && sudo -n systemctl start ${pd.unit}`);
    const client = pki.issue('client', []);
    const curl = (args: string[]) => spawnSync('curl', ['-sS', '--max-time', '5', '--cacert', pki.ca, ...args, 'https://10.77.0.11:2479/pd/api/v1/members'], { encoding: 'utf8' });
    const ok = await waitUntil('the TLS PD to serve its API', 60_000, () => {
      const r = curl(['--cert', client.cert, '--key', client.key]);
      return r.status === 0 && r.stdout.includes('tls-probe') ? r : undefined;
    }, 1000);
    const members = JSON.parse(ok.stdout) as { members: Array<{ name: string; peer_urls: string[]; client_urls: string[] }> };
    expect(members.members.map((m) => [m.name, m.peer_urls])).toEqual([['tls-probe', ['https://10.77.0.11:2480']]]);
    const noCert = curl([]);
    expect(noCert.status).not.toBe(0); // handshake refused: no client certificate
    expect(noCert.stdout).toBe('');
    expect(noCert.stderr).toMatch(/alert|certificate|handshake|reset/i);
    const plain = spawnSync('curl', ['-sS', '--max-time', '5', 'http://10.77.0.11:2479/pd/api/v1/members'], { encoding: 'utf8' });
    expect(plain.stdout).not.toContain('tls-probe');
  }, 90_000);

  test('TiCDC refuses a PD URL scheme that does not match its TLS setting, both ways', async () => {
    const cdc = on('cdc', '10.77.0.14');
    installCerts(cdc, 'cdc');
    // Certificates on, PD URLs http.
    putFile(info, cdc.host, cdc.runScript, renderRunScript(cdc, topo, { tls: true }).replace(/https:\/\//g, 'http://'), { mode: '755' });
    restartWithFreshLogs(cdc);
    await waitUntil('CDC to refuse http with certificates', 30_000, () => logs(cdc).includes('PD endpoint scheme should be https') || undefined);
    // No certificates, PD URLs https.
    putFile(info, cdc.host, cdc.runScript, renderRunScript(cdc, topo, { tls: false }).replace(/http:\/\//g, 'https://'), { mode: '755' });
    restartWithFreshLogs(cdc);
    await waitUntil('CDC to refuse https without certificates', 30_000, () => logs(cdc).includes('PD endpoint scheme should be http') || undefined);
    expect(state(cdc)).not.toMatch(/ActiveState=active\n/);
  }, 90_000);

  test('a TiKV configured for TLS against a plaintext PD shows Down in /stores', async () => {
    const kv = on('tikv', '10.77.0.13');
    installCerts(kv, 'tikv');
    const conf = sshOk(info, kv.host, `cat ${kv.deployDir}/conf/tikv.toml`);
    const tls = `${kv.deployDir}/tls`;
    putFile(info, kv.host, `${kv.deployDir}/conf/tikv.toml`, `${conf}\n[security]\nca-path = "${tls}/ca.crt"\ncert-path = "${tls}/tikv.crt"\nkey-path = "${tls}/tikv.pem"\n`);
    restartWithFreshLogs(kv);
    const addr = `${kv.host}:${kv.ports.port}`;
    const pd = on('pd', '10.77.0.11').host;
    // max-store-down-time is 30s in the lab topology: Disconnected after 20 s, then Down.
    const seen = new Set<string>();
    await waitUntil(`store ${addr} Down`, 90_000, async () => {
      const st = (await storeStates(pd))[addr];
      seen.add(st);
      return st === 'Down' || undefined;
    }, 2000);
    expect(seen.has('Disconnected')).toBe(true);
    const other = (await storeStates(pd))[`10.77.0.11:20160`];
    expect(other).toBe('Up');
  }, 120_000);

  test('labReset brings back a fresh, healthy plaintext cluster without rebooting the hosts', async () => {
    const pidsBefore = (await labStatus()).hosts.map((h) => h.pid);
    const r = await labReset();
    expect(r.totalMs).toBeGreaterThan(0);
    const s = await labStatus();
    expect(s.hosts.map((h) => h.pid)).toEqual(pidsBefore);
    expect(s.cluster?.problems).toEqual([]);
    expect(s.cluster?.healthy).toBe(true);
    for (const h of s.hosts) {
      expect(Object.values(h.units).every((u) => u === 'active')).toBe(true);
      expect(Object.keys(h.units)).not.toContain('pd-2479.service');
    }
    expect(sshOk(info, '10.77.0.13', `ls /tidb-deploy/tikv-20160`).split('\n')).not.toContain('tls');
    expect(sshOk(info, '10.77.0.11', 'ls /tidb-deploy')).not.toContain('pd-2479');
  }, 180_000);
});
