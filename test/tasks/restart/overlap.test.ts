/**
 * The overlap schedule (the default) on fake hosts whose systemd records every stop and start: all
 * stops before any start, PD first, and the others started only once PD's client port accepts
 * connections (a real listener on loopback, opened a while after PD's start); a resume that finds
 * the units stopped starts them without stopping anything.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { FakePool } from '../../../src/ssh/fake';
import { overlapRestartStep, waitListening } from '../../../src/tasks/restart/overlap';
import { parseTopology } from '../../../src/topology';
import { fakeTlsContext } from '../../support/deployed-pool';
import { freePort, privateLoopback } from '../../support/loopback';

interface Event {
  action: string;
  unit: string;
  t: number;
}

/**
 * One host on a loopback address of its own (so the ports picked free stay free until PD's
 * listener opens, whatever other test files bind meanwhile): PD, two TiKV, a TiDB; ports nobody
 * listens on except PD's, once "started".
 */
async function setup(initial: 'active' | 'inactive') {
  const host = privateLoopback();
  const [pdPort, ...others] = await Promise.all(Array.from({ length: 8 }, () => freePort(host)));
  const topo = parseTopology(
    [
      'global: {user: tidb, deploy_dir: /tidb-deploy, data_dir: /tidb-data}',
      `pd_servers: [{host: ${host}, client_port: ${pdPort}, peer_port: ${others[0]}}]`,
      `tikv_servers: [{host: ${host}, port: ${others[1]}, status_port: ${others[2]}}, {host: ${host}, port: ${others[3]}, status_port: ${others[4]}}]`,
      `tidb_servers: [{host: ${host}, port: ${others[5]}, status_port: ${others[6]}}]`,
    ].join('\n'),
    'overlap.yaml',
  );
  const events: Event[] = [];
  const state = new Map(topo.instances.map((i) => [i.unit, initial]));
  let listener: net.Server | undefined;
  let opening: NodeJS.Timeout | undefined;
  let listeningAt = 0;
  const pool = new FakePool();
  const h = pool.host(host);
  const pdUnit = topo.instances.find((i) => i.role === 'pd')!.unit;
  const started = Math.floor(Date.now() / 1000) - 3600; // an hour ago, before the configs changed
  h.onExec(/^systemctl show -p Id .* --timestamp=unix (.*)$/, (_c, ctx) => {
    const units = ctx.match![1].split(' ').map((u) => u.replace(/'/g, ''));
    const out = units.map((u) => `Id=${u}\nLoadState=loaded\nActiveState=${state.get(u)}\nSubState=${state.get(u) === 'active' ? 'running' : 'dead'}\nNRestarts=0\nActiveEnterTimestamp=@${started}\nMainPID=1`).join('\n\n');
    return { stdout: out + '\n', stderr: '', code: 0 };
  });
  h.onExec(/^stat -c %Y /, () => ({ stdout: `${Math.floor(Date.now() / 1000)}\n`, stderr: '', code: 0 }));
  h.onExec(/systemctl (stop|start|restart) '?([^' ]+)'?$/, (_c, ctx) => {
    const [action, unit] = [ctx.match![1], ctx.match![2]];
    events.push({ action, unit, t: Date.now() });
    state.set(unit, action === 'stop' ? 'inactive' : 'active');
    if (unit === pdUnit && action !== 'stop') {
      // PD's process takes a while before its client port listens.
      opening = setTimeout(() => {
        listener = net.createServer((s) => s.destroy());
        listener.listen(pdPort, host, () => (listeningAt = Date.now()));
      }, 300);
    }
    return { stdout: '', stderr: '', code: 0 };
  });
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-overlap-'));
  const ctx = fakeTlsContext({ want: 'on', topology: topo, pool, stateDir, flags: { schedule: 'overlap' } });
  return {
    topo, ctx, events, pdUnit, listeningAt: () => listeningAt,
    cleanup: () => {
      clearTimeout(opening);
      listener?.close();
      fs.rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

describe('the overlap restart schedule', () => {
  it('stops everything at once, starts PD, and starts the rest only once PD listens', async () => {
    const s = await setup('active');
    try {
      const d = await overlapRestartStep().decide(s.ctx);
      expect(d.actions.map((a) => a.title.replace(/\d+/g, 'N'))).toEqual([
        'stop pd-N.service@N.N.N.N, tikv-N.service@N.N.N.N, tikv-N.service@N.N.N.N, tidb-N.service@N.N.N.N (all at once)',
        'start pd-N.service@N.N.N.N and wait until its client port listens',
        'start tikv-N.service@N.N.N.N, tikv-N.service@N.N.N.N, tidb-N.service@N.N.N.N (all at once)',
      ]);
      for (const a of d.actions) await a.run();
      const stops = s.events.filter((e) => e.action === 'stop');
      const starts = s.events.filter((e) => e.action === 'start');
      expect(stops.map((e) => e.unit).sort()).toEqual(s.topo.instances.map((i) => i.unit).sort());
      expect(starts.map((e) => e.unit).sort()).toEqual(s.topo.instances.map((i) => i.unit).sort());
      expect(Math.max(...stops.map((e) => e.t))).toBeLessThanOrEqual(Math.min(...starts.map((e) => e.t)));
      expect(starts[0].unit).toBe(s.pdUnit);
      expect(s.listeningAt()).toBeGreaterThan(0);
      for (const e of starts.slice(1)) expect(e.t).toBeGreaterThanOrEqual(s.listeningAt());
    } finally {
      s.cleanup();
    }
  });

  it('on a resume that finds everything stopped, starts without stopping', async () => {
    const s = await setup('inactive');
    try {
      const d = await overlapRestartStep().decide(s.ctx);
      expect(d.actions.map((a) => a.title.split(' ')[0])).toEqual(['start', 'start']);
      for (const a of d.actions) await a.run();
      expect(s.events.filter((e) => e.action === 'stop')).toEqual([]);
      expect(s.events[0].unit).toBe(s.pdUnit);
    } finally {
      s.cleanup();
    }
  });

  it('says which port did not listen, and since when', async () => {
    const host = privateLoopback();
    const port = await freePort(host);
    await expect(waitListening(host, port, 200, 20)).rejects.toThrow(new RegExp(`^${host.replace(/\./g, '\\.')}:${port} does not listen 0 s after its start: .*ECONNREFUSED`));
  });
});
