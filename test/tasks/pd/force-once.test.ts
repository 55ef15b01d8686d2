/**
 * --force-new-cluster never outlives its moment (issue #26 item 5): what a killed recovery (or
 * tiseal before it) can leave on a PD host is found and repaired by the first step of every
 * changing verb. Fake hosts; the run script is TiUP's as src/render writes it.
 */
import { FakePool } from '../../../src/ssh';
import { forceLeftoverProblem, forceLeftoversStep, forceScript, forceUnit, readForceLeftovers, withoutForceNewCluster } from '../../../src/tasks/pd/force-once';
import { withForceNewCluster } from '../../../src/tasks/pd/quorum';
import { renderRunScript } from '../../../src/render';
import { parseTopology, pdInstances } from '../../../src/topology';
import { fakeTlsContext } from '../../support/deployed-pool';

const TOPO = parseTopology(['global:', '  user: tidb', 'pd_servers:', '  - host: 10.0.0.1', '  - host: 10.0.0.2', 'tikv_servers:', '  - host: 10.0.0.1'].join('\n'), 'two.yaml');
const [P1, P2] = pdInstances(TOPO);

function hosts(o: { forcedScript?: boolean; transient?: boolean; copy?: boolean }) {
  const pool = new FakePool();
  const script = renderRunScript(P1, TOPO, { tls: true, pdMode: 'initial' });
  const state = { transient: Boolean(o.transient), unitStarted: 0, copy: Boolean(o.copy) };
  for (const [pd, ex] of [[P1, pool.host(P1.host)], [P2, pool.host(P2.host)]] as const) {
    ex.addFile(pd.runScript, pd === P1 && o.forcedScript ? withForceNewCluster(script)! : renderRunScript(pd, TOPO, { tls: true, pdMode: 'initial' }), { owner: 'tidb', mode: 0o755 });
    ex.onExec(/^systemctl show -p ActiveState --value '?tiseal-force-pd-2379\.service'?; if \[ -e /, () => `${pd === P1 && state.transient ? 'active' : 'inactive'}\n${pd === P1 && state.copy ? 'copy\n' : ''}`);
  }
  const ex = pool.host(P1.host);
  ex.onExec(/^systemctl stop '?tiseal-force-pd-2379\.service'?; rm -f /, () => {
    state.transient = false;
    state.copy = false;
  });
  ex.onExec(/systemctl start '?pd-2379\.service'?$/, () => void state.unitStarted++);
  ex.onExec(/^rm -f '?\/run\/tiseal\//, () => void (state.copy = false));
  return { pool, state, script };
}

describe('--force-new-cluster leftovers', () => {
  it('names: transient unit and root-owned copy on tmpfs, per PD unit', () => {
    expect(forceUnit(P1)).toBe('tiseal-force-pd-2379.service');
    expect(forceScript(P1)).toBe('/run/tiseal/pd-2379-force-new-cluster.sh');
    const script = renderRunScript(P1, TOPO, { tls: true, pdMode: 'initial' });
    expect(withoutForceNewCluster(withForceNewCluster(script)!)).toBe(script);
  });

  it('nothing left: the step has nothing to do and status reports nothing', async () => {
    const { pool } = hosts({});
    const ctx = fakeTlsContext({ want: 'on', topology: TOPO, pool, stateDir: '/nonexistent' });
    expect(forceLeftoverProblem(P1, await readForceLeftovers(pool.host(P1.host), P1))).toBeUndefined();
    expect((await forceLeftoversStep.decide(ctx)).actions).toEqual([]);
  });

  it('the flag in run_pd.sh (tiseal before this change wrote it there): reported, then removed with a backup, PD not restarted', async () => {
    const { pool, state, script } = hosts({ forcedScript: true });
    const left = await readForceLeftovers(pool.host(P1.host), P1);
    expect(forceLeftoverProblem(P1, left)).toMatch(/run_pd\.sh starts PD with --force-new-cluster \(its next restart drops every other member\)/);
    const ctx = fakeTlsContext({ want: 'on', topology: TOPO, pool, stateDir: '/nonexistent' });
    const d = await forceLeftoversStep.decide(ctx);
    expect(d.actions.map((a) => a.title)).toEqual([`remove --force-new-cluster from ${P1.runScript} on 10.0.0.1`]);
    await d.actions[0].run();
    expect(pool.host(P1.host).readText(P1.runScript)).toBe(script);
    expect(pool.host(P1.host).calls.some((c) => c.op === 'backup' && c.path === P1.runScript)).toBe(true);
    expect(state.unitStarted).toBe(0);
    expect((await forceLeftoversStep.decide(ctx)).actions).toEqual([]);
  });

  it('a forced PD still running as the transient unit (killed mid-recovery): reported, then stopped and the normal unit started', async () => {
    const { pool, state } = hosts({ transient: true, copy: true });
    expect(forceLeftoverProblem(P1, await readForceLeftovers(pool.host(P1.host), P1))).toMatch(/tiseal-force-pd-2379\.service runs PD with --force-new-cluster/);
    const ctx = fakeTlsContext({ want: 'on', topology: TOPO, pool, stateDir: '/nonexistent' });
    const d = await forceLeftoversStep.decide(ctx);
    expect(d.actions.map((a) => a.title)).toEqual(['stop tiseal-force-pd-2379.service on 10.0.0.1 (a forced PD of an interrupted recovery) and start pd-2379.service']);
    await d.actions[0].run();
    expect(state).toMatchObject({ transient: false, copy: false, unitStarted: 1 });
    expect((await forceLeftoversStep.decide(ctx)).actions).toEqual([]);
  });
});
