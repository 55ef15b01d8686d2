/**
 * The plaintext cluster on the lab, laid out and run the way TiUP does it, checked with
 * independent tools: ssh + systemctl, the PD HTTP API, etcdctl, curl-like HTTP GETs.
 */
import { spawnSync } from 'child_process';
import type { LabInfo } from '../../lab';
import { loadTopology } from '../../src/topology';
import type { Topology } from '../../src/topology/types';
import { describeLab, ensureLab, get, pdMembers, ssh, sshOk, storeStates, waitUntil } from './helpers';
import { expectPlainCluster } from './expect-cluster';

describeLab('plaintext cluster on the lab', () => {
  let info: LabInfo;
  let topo: Topology;
  beforeAll(async () => {
    info = await ensureLab();
    topo = loadTopology(info.topologyFile);
  }, ensureLab.timeoutMs);

  test('every instance is an active systemd unit, with TiUP\'s files owned by tidb', () => {
    for (const { host } of topo.hosts) {
      const insts = topo.instances.filter((i) => i.host === host);
      const units = insts.map((i) => i.unit);
      expect(sshOk(info, host, `systemctl is-active ${units.join(' ')}`).trim().split('\n')).toEqual(units.map(() => 'active'));
      for (const i of insts) {
        const files = [i.runScript, ...i.configFiles, `/etc/systemd/system/${i.unit}`];
        const out = sshOk(info, host, `stat -c '%U %a %n' ${files.join(' ')} ${i.deployDir} ${i.logDir} ${i.dataDir ?? ''}`);
        for (const line of out.trim().split('\n')) {
          const [owner, mode, name] = line.split(' ');
          expect([name, owner]).toEqual([name, name.startsWith('/etc/systemd/') ? 'root' : 'tidb']);
          if (name === i.runScript) expect(mode).toBe('755');
        }
        const unit = sshOk(info, host, `systemctl show -p User -p ExecStart -p Restart -p RestartUSec ${i.unit}`);
        expect(unit).toContain('User=tidb');
        expect(unit).toContain(`argv[]=/bin/bash -c ${i.runScript}`);
        expect(unit).toContain('Restart=always');
        expect(unit).toContain('RestartUSec=15s');
        // The emulator is what runs (Prometheus: Debian's real one): TiUP's path, a wrapper that says so.
        if (i.role === 'prometheus') {
          expect(sshOk(info, host, `cat ${i.deployDir}/bin/prometheus/prometheus`)).toMatch(/^exec \/usr\/bin\/prometheus "\$@"$/m);
          continue;
        }
        const bin = sshOk(info, host, `cat ${i.deployDir}/bin/${i.role === 'tiflash' ? 'tiflash/tiflash' : i.role === 'cdc' ? 'cdc' : `${i.role}-server`}`);
        expect(bin).toContain('tiseal lab EMULATOR');
      }
    }
  });

  test('PD lists 3 members with http peer URLs and a leader', async () => {
    const pds = topo.instances.filter((i) => i.role === 'pd');
    const m = await pdMembers(pds[0].host);
    expect(m.names).toEqual(pds.map((p) => p.name).sort());
    expect(m.peerUrls).toEqual(pds.map((p) => `http://${p.host}:2380`).sort());
    expect(m.names).toContain(m.leader);
  });

  test('etcdctl (v3 API through the PD client port) agrees with PD', async () => {
    const pds = topo.instances.filter((i) => i.role === 'pd');
    const r = spawnSync('etcdctl', ['--endpoints', `http://${pds[0].host}:2379`, '--dial-timeout', '5s', '--command-timeout', '10s', 'member', 'list', '-w', 'simple'], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => l.split(', '));
    expect(rows.map((c) => c[2]).sort()).toEqual(pds.map((p) => p.name).sort());
    expect(rows.map((c) => c[3]).sort()).toEqual(pds.map((p) => `http://${p.host}:2380`).sort());
    expect(rows.every((c) => c[1] === 'started')).toBe(true);
  });

  test('all stores are Up; TiDB and TiCDC answer /status', async () => {
    const states = await storeStates(topo.instances.find((i) => i.role === 'pd')!.host);
    for (const kv of topo.instances.filter((i) => i.role === 'tikv')) expect(states[`${kv.host}:${kv.ports.port}`]).toBe('Up');
    const flash = topo.instances.find((i) => i.role === 'tiflash')!;
    // Real TiFlash registers flash_service_port; earlier emulator builds used the proxy port (lab/README.md).
    const flashState = states[`${flash.host}:${flash.ports.flash_service_port}`] ?? states[`${flash.host}:${flash.ports.flash_proxy_port}`];
    expect(flashState).toBe('Up');
    expect(Object.values(states).every((s) => s === 'Up')).toBe(true);
    const tidb = topo.instances.find((i) => i.role === 'tidb')!;
    const db = await get(`http://${tidb.host}:${tidb.ports.status_port}/status`);
    expect(db.status).toBe(200);
    expect(JSON.parse(db.body)).toHaveProperty('version');
    const cdc = topo.instances.find((i) => i.role === 'cdc')!;
    expect((await get(`http://${cdc.host}:${cdc.ports.port}/status`)).status).toBe(200);
    // the shared check every rollback relies on holds on the freshly deployed cluster
    await expectPlainCluster(info);
  });

  test('systemd restarts a PD whose main process was killed (Restart=always, RestartSec=15s)', async () => {
    const pd = topo.instances.find((i) => i.role === 'pd')!;
    const show = (): { pid: string; restarts: number; state: string } => {
      const o = sshOk(info, pd.host, `systemctl show -p MainPID -p NRestarts -p ActiveState ${pd.unit}`);
      const kv = Object.fromEntries(o.trim().split('\n').map((l) => l.split('=')));
      return { pid: kv.MainPID, restarts: Number(kv.NRestarts), state: kv.ActiveState };
    };
    const before = show();
    expect(before.state).toBe('active');
    const killedAt = Date.now();
    sshOk(info, pd.host, `sudo -n systemctl kill -s KILL ${pd.unit}`);
    await waitUntil('the PD unit to leave its old process', 10_000, () => show().pid !== before.pid || undefined);
    const after = await waitUntil('systemd to restart the PD', 60_000, () => {
      const s = show();
      return s.state === 'active' && s.pid !== '0' && s.pid !== before.pid && s.restarts === before.restarts + 1 ? s : undefined;
    }, 1000);
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(14_000); // RestartSec=15s really applies
    expect(after.restarts).toBe(before.restarts + 1);
    await waitUntil('PD to be a full member again', 60_000, async () => {
      const m = await pdMembers(pd.host);
      return m.names.length === 3 && m.leader ? m : undefined;
    });
    expect(ssh(info, pd.host, `systemctl is-active ${pd.unit}`).stdout.trim()).toBe('active');
  }, 120_000);
});
