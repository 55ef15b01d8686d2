/**
 * What a lab test asserts about the whole cluster, in one place: a RUNNING cluster (every unit
 * active, PD's 3 members with a leader, every store Up, TiDB's and TiCDC's status ports answering,
 * a key written and read back through PD) on plaintext or on TLS. "Every TLS port refuses a
 * handshake" alone would also hold for a stopped cluster, so the plaintext check also requires
 * every port to accept a TCP connection. Ports come from test/lab/tiup-ports.ts (TiUP's table),
 * never from tiseal's. All checks use independent clients: curl, openssl, etcdctl, ssh.
 */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as net from 'net';
import { spawnSync } from 'child_process';
import type { LabInfo } from '../../lab';
import { resolveOptions } from '../../lab/options';
import { readState } from '../../lab/state';
import { sshOk } from './helpers';
import { certSans, curl, etcdctlMembers, labTopology, pdJson, sClient, tlsFiles } from './tiseal';
import { tiupTlsEndpoints, type TiupEndpoint } from './tiup-ports';

type Scheme = 'http' | 'https';
type Members = { members: Array<{ name: string; peer_urls: string[]; client_urls: string[] }> };
type Stores = { stores: Array<{ store: { address: string; state_name: string } }> };

/** The TLS ports of the lab cluster, from TiUP's table (the deployed emulated version decides TiFlash's: labReset({ version }) records it). */
export function labTlsEndpoints(info: LabInfo): TiupEndpoint[] {
  return tiupTlsEndpoints(info.topologyFile, readState(info.dir)?.deployed?.version ?? resolveOptions().version);
}

const firstPd = (info: LabInfo): string => labTopology(info).instances.find((i) => i.role === 'pd')!.host;

/** curl, with the cluster CA and tiseal's client certificate for https. */
function curlLab(info: LabInfo, scheme: Scheme, args: string[]): { code: number | null; out: string } {
  const f = tlsFiles(info);
  return curl([...(scheme === 'https' ? ['--cacert', f.ca, '--cert', f.cert, '--key', f.key] : []), ...args]);
}

/** Does host:port accept a TCP connection (something listens)? */
export function tcpOpen(host: string, port: number, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port, timeout: timeoutMs });
    const done = (v: boolean) => {
      s.destroy();
      resolve(v);
    };
    s.once('connect', () => done(true));
    s.once('timeout', () => done(false));
    s.once('error', () => done(false));
  });
}

/**
 * Send one line over TLS (cluster CA, given client certificate or none) and return what the server
 * said, plus openssl's output. The emulators' RPC ports answer `ping` with `pong <component> …`.
 */
export function tlsSay(info: LabInfo, host: string, port: number, line: string, client?: { cert: string; key: string }, ca = tlsFiles(info).ca): string {
  const auth = client ? ['-cert', client.cert, '-key', client.key] : [];
  const r = spawnSync('openssl', ['s_client', '-quiet', '-connect', `${host}:${port}`, '-verify_return_error', '-CAfile', ca, ...auth, '-ignore_unexpected_eof'], {
    input: `${line}\n`,
    encoding: 'utf8',
    timeout: 15_000,
  });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`;
}

/** TiKV's gRPC port answers a client with an accepted certificate and refuses one without. */
export function expectTikvDemandsClientCert(info: LabInfo, host: string, port = 20160): void {
  const f = tlsFiles(info);
  expect(tlsSay(info, host, port, 'ping', { cert: f.cert, key: f.key })).toMatch(/pong tikv/);
  const bare = tlsSay(info, host, port, 'ping');
  expect(bare).not.toMatch(/pong/);
  expect(bare).toMatch(/alert|certificate required|handshake failure/i);
}

function expectUnitsActive(info: LabInfo): void {
  const t = labTopology(info);
  for (const h of t.hosts) {
    const units = t.instances.filter((i) => i.host === h.host).map((i) => i.unit);
    const states = sshOk(info, h.host, `systemctl is-active ${units.join(' ')}; true`).trim().split('\n');
    expect(units.map((u, i) => `${h.host} ${u} ${states[i]}`)).toEqual(units.map((u) => `${h.host} ${u} active`));
  }
}

/** A running cluster on `scheme`: units active, PD quorum, stores Up, TiDB/TiCDC answering, PD kv round trip. */
export function expectRunningCluster(info: LabInfo, scheme: Scheme): void {
  const t = labTopology(info);
  const pd = firstPd(info);
  expectUnitsActive(info);

  // PD: its own view and etcd's, every member on `scheme`, a leader.
  const pds = t.instances.filter((i) => i.role === 'pd');
  const m = pdJson<Members>(info, pd, '/pd/api/v1/members', scheme);
  expect(m.members.map((x) => x.name).sort()).toEqual(pds.map((i) => i.name).sort());
  for (const x of m.members) expect([...x.peer_urls, ...x.client_urls].filter((u) => !u.startsWith(`${scheme}://`))).toEqual([]);
  expect(pdJson<{ name: string }>(info, pd, '/pd/api/v1/leader', scheme).name).toMatch(/\S/);
  const lines = etcdctlMembers(info, pd, scheme);
  expect(lines).toHaveLength(pds.length);
  for (const l of lines) expect(l).toMatch(new RegExp(`, started, .*, ${scheme}://10\\.77\\.0\\.\\d+:2380`));

  // Every TiKV and TiFlash store registered and Up.
  const stores = pdJson<Stores>(info, pd, '/pd/api/v1/stores', scheme).stores.map((s) => `${s.store.address} ${s.store.state_name}`).sort();
  const want = t.instances
    .filter((i) => i.role === 'tikv' || i.role === 'tiflash')
    .map((i) => `${i.host}:${i.role === 'tikv' ? i.ports.port : i.ports.flash_service_port} Up`)
    .sort();
  expect(stores).toEqual(want);

  // TiDB and TiCDC answer on their status ports.
  for (const i of t.instances.filter((x) => x.role === 'tidb')) {
    const r = curlLab(info, scheme, [`${scheme}://${i.host}:${i.ports.status_port}/status`]);
    expect(`${i.id} ${r.code} ${r.out}`).toMatch(new RegExp(`^${i.id} 0 .*"version"`, 's'));
  }
  for (const i of t.instances.filter((x) => x.role === 'cdc')) {
    const r = curlLab(info, scheme, ['-o', '/dev/null', '-w', '%{http_code}', `${scheme}://${i.host}:${i.ports.port}/status`]);
    expect(`${i.id} ${r.code} ${r.out}`).toBe(`${i.id} 0 200`);
  }

  // A write and a read through PD's etcd, over gRPC (etcdctl): from v8.4 with several CNs
  // (--verify-cn) PD's JSON gateway fails every /v3 call, as it does on a real PD.
  const key = `tiseal-test/alive-${randomBytes(4).toString('hex')}`;
  const value = randomBytes(8).toString('hex');
  expect(etcdctlLab(info, pd, scheme, ['put', key, value])).toBe('OK');
  expect(etcdctlLab(info, pd, scheme, ['get', key, '--print-value-only'])).toBe(value);
}

/** etcdctl (v3, gRPC) against one PD's client port, with tiseal's client certificate for https. */
function etcdctlLab(info: LabInfo, host: string, scheme: Scheme, args: string[]): string {
  const f = tlsFiles(info);
  const tls = scheme === 'https' ? ['--cacert', f.ca, '--cert', f.cert, '--key', f.key] : [];
  const r = spawnSync('etcdctl', ['--endpoints', `${scheme}://${host}:2379`, ...tls, '--dial-timeout', '5s', '--command-timeout', '10s', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 20_000,
  });
  if (r.status !== 0) throw new Error(`etcdctl ${args[0]} via ${scheme}://${host}:2379: ${r.stderr}`);
  return r.stdout.trim();
}

/** A running plaintext cluster: every TLS port of TiUP's table listens and refuses a TLS handshake. */
export async function expectPlainCluster(info: LabInfo): Promise<void> {
  expectRunningCluster(info, 'http');
  for (const ep of labTlsEndpoints(info)) {
    expect(`${ep.role} ${ep.host}:${ep.port} listening ${await tcpOpen(ep.host, ep.port)}`).toBe(`${ep.role} ${ep.host}:${ep.port} listening true`);
    const r = sClient(info, ep.host, ep.port);
    expect(`${ep.role} ${ep.host}:${ep.port} handshake ${r.code === 0 ? 'ok' : 'refused'}`).toBe(`${ep.role} ${ep.host}:${ep.port} handshake refused`);
  }
}

/** Every TLS port of TiUP's table: a handshake verified against the cluster CA, a certificate naming the host. */
export function expectEveryPortOnTls(info: LabInfo): void {
  for (const ep of labTlsEndpoints(info)) {
    const r = sClient(info, ep.host, ep.port, ['-showcerts']);
    if (r.code !== 0 || !/Verify return code: 0 \(ok\)/.test(r.out)) throw new Error(`${ep.role} ${ep.key} ${ep.host}:${ep.port} is not on verified TLS: ${r.out.slice(-800)}`);
    expect(certSans(r.cert)).toContain(`IP Address:${ep.host}`);
  }
}

/** A running cluster on TLS: every port verified, plain http to PD refused, TiKV and PD demand a client certificate. */
export function expectTlsCluster(info: LabInfo): void {
  expectRunningCluster(info, 'https');
  expectEveryPortOnTls(info);
  const pd = firstPd(info);
  const plain = curl([`http://${pd}:2379/pd/api/v1/members`]);
  expect(plain.code === 0 && /"members"/.test(plain.out)).toBe(false);
  const f = tlsFiles(info);
  const noCert = curl(['--cacert', f.ca, `https://${pd}:2379/pd/api/v1/members`]);
  expect(noCert.code === 0 && /"members"/.test(noCert.out)).toBe(false);
  for (const i of labTopology(info).instances.filter((x) => x.role === 'tikv')) expectTikvDemandsClientCert(info, i.host, i.ports.port);
}

/**
 * Where a secret of this machine (a PEM/OpenSSH private key file, e.g. the CA key) appears on a host:
 * every regular file under 64 KiB on every mount but /proc, /sys and /dev, compared by content (a
 * copy under another name or on a bind mount counts).
 */
export function secretCopies(info: LabInfo, host: string, secretFile: string): string[] {
  // A line from the middle: the first lines of a key file are a header shared by every key of its type.
  const lines = fs.readFileSync(secretFile, 'utf8').split('\n').filter((l) => /^[A-Za-z0-9+/]{60,76}$/.test(l));
  const line = lines[Math.floor(lines.length / 2)];
  if (!line) throw new Error(`${secretFile}: no base64 line to look for`);
  const out = sshOk(
    info,
    host,
    `sudo -n sh -c 'find / \\( -path /proc -o -path /sys -o -path /dev \\) -prune -o -type f -size -64k -print0 | xargs -0 grep -lF -- ${line} 2>/dev/null; true'`,
  );
  return out.trim().split('\n').filter(Boolean);
}

/**
 * Live, on every PD and TiKV: `refused` (e.g. a certificate from a retired CA) gets no answer where
 * `accepted` (the current client certificate) does, so the refusal is not a dead port.
 */
export function expectClientRefused(info: LabInfo, refused: { cert: string; key: string }, accepted: { cert: string; key: string }): void {
  const t = labTopology(info);
  const ca = tlsFiles(info).ca;
  for (const pd of t.instances.filter((i) => i.role === 'pd')) {
    const url = `https://${pd.host}:${pd.ports.client_port}/pd/api/v1/health`;
    expect(curl(['--cacert', ca, '--cert', accepted.cert, '--key', accepted.key, url]).out).toMatch(/"health": ?true/);
    const r = curl(['--cacert', ca, '--cert', refused.cert, '--key', refused.key, url]);
    expect(`${url} ${r.code === 0 && /"health"/.test(r.out) ? 'served' : 'refused'}`).toBe(`${url} refused`);
  }
  for (const kv of t.instances.filter((i) => i.role === 'tikv')) {
    expect(tlsSay(info, kv.host, kv.ports.port, 'ping', accepted)).toMatch(/pong tikv/);
    expect(`${kv.host}:${kv.ports.port} ${tlsSay(info, kv.host, kv.ports.port, 'ping', refused)}`).not.toMatch(/pong/);
  }
}
