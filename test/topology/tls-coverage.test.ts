import { COMPONENTS, tlsConfigFiles } from '../../src/components';
import { PreflightError } from '../../src/errors';
import { FakePool } from '../../src/ssh';
import type { TlsContext } from '../../src/tasks/context';
import { preflightStep } from '../../src/tasks/preflight';
import { CERT_ROLES } from '../../src/tasks/certs/stage';
import { ALL_ROLE_SPECS, parseTopology, refusedInstances, TLS_HANDLING, tlsCoverageError } from '../../src/topology';
import type { Topology } from '../../src/topology/types';
import { fakeTlsContext } from '../support/tls-context';

/**
 * Every role list of TiUP's topology, as the yaml tags of pingcap/tiup master
 * pkg/cluster/spec/spec.go `Specification`:
 *   TiDBServers `yaml:"tidb_servers"` … Alertmanagers `yaml:"alertmanager_servers,omitempty"`
 */
const TIUP_ROLE_LISTS = [
  'tidb_servers',
  'tikv_servers',
  'tiflash_servers',
  'tiproxy_servers',
  'pd_servers',
  'tso_servers',
  'scheduling_servers',
  'resource_manager_servers',
  'router_servers',
  'tidb_dashboard_servers',
  'pump_servers',
  'drainer_servers',
  'cdc_servers',
  'kvcdc_servers',
  'tispark_masters',
  'tispark_workers',
  'monitoring_servers',
  'grafana_servers',
  'alertmanager_servers',
];

/** One instance of every TiUP role, each on its own host (no port conflicts). */
function everyRole(): Topology {
  const body = TIUP_ROLE_LISTS.map((k, i) => `${k}:\n  - host: 10.9.0.${i + 1}\n`).join('');
  return parseTopology(`global:\n  user: tidb\n${body}`, '/etc/every-role.yaml');
}

describe('every instance of a topology is converted or refused (issue #12 item 10)', () => {
  it('knows every TiUP role list, and says for each what tls enable/disable/rotate do with it', () => {
    expect(ALL_ROLE_SPECS.map((s) => s.key).sort()).toEqual([...TIUP_ROLE_LISTS].sort());
    expect(Object.keys(TLS_HANDLING).sort()).toEqual([...TIUP_ROLE_LISTS].sort());
  });

  it('with one instance of every role: each one is planned (managed, restartable, files or certificate) or refused, none both, none neither', () => {
    const t = everyRole();
    const all = [...t.instances, ...(t.otherInstances ?? [])];
    expect(all).toHaveLength(TIUP_ROLE_LISTS.length); // nothing dropped by the parser
    expect(t.warnings.filter((w) => /unknown section/.test(w.message))).toEqual([]);
    const refused = new Set(refusedInstances(t).map((r) => r.inst));
    for (const inst of all) {
      const key = inst.roleKey!;
      const planned = t.instances.includes(inst as never) && !refused.has(inst);
      expect([key, planned || refused.has(inst)]).toEqual([key, true]);
      expect([key, planned && refused.has(inst)]).toEqual([key, false]);
      if (planned) {
        const i = t.instances.find((x) => x === inst)!;
        // The plan restarts it in a tier and either gives it TLS material or leaves it as TiUP does under TLS.
        expect(COMPONENTS[i.role]).toBeDefined();
        const touches = CERT_ROLES.has(i.role) || tlsConfigFiles(i).length > 0;
        expect([key, touches]).toEqual([key, TLS_HANDLING[key].kind === 'converted']);
      }
    }
    expect([...refused].map((i) => i.roleKey).sort()).toEqual(
      ['tiproxy_servers', 'tso_servers', 'scheduling_servers', 'router_servers', 'resource_manager_servers', 'tidb_dashboard_servers', 'kvcdc_servers', 'tispark_masters', 'tispark_workers'].sort(),
    );
  });

  it('the refusal is one line naming the topology file, the line and the instance, with a suggestion', () => {
    const t = parseTopology('global:\n  user: tidb\npd_servers:\n  - host: 10.0.0.1\ntiproxy_servers:\n  - host: 10.0.0.5\ntso_servers:\n  - host: 10.0.0.6\n', '/etc/tp.yaml');
    const e = tlsCoverageError(t)!;
    expect(e).toBeInstanceOf(PreflightError);
    expect(e.message).not.toContain('\n');
    expect(e.message).toMatch(/^\/etc\/tp\.yaml:6: tiproxy_servers 10\.0\.0\.5:6000: tiseal does not convert TiProxy to TLS yet \(TiUP does\): TiUP sets its cluster-tls, server-http-tls and sql-tls \(and 1 more: tso_servers 10\.0\.0\.6:3379\)$/);
    expect(e.suggestion).toMatch(/scale-in.*nothing was changed on any host/);
    // `topology check` says so up front, for TiProxy (managed) as for tso (not managed).
    expect(t.warnings.map((w) => w.message).sort()).toEqual([
      expect.stringMatching(/^tiproxy_servers: tls enable\/disable\/rotate refuse this topology: tiseal does not convert TiProxy/),
      expect.stringMatching(/^tso_servers: tiseal does not manage tso instances/),
    ]);
    expect(tlsCoverageError(parseTopology('pd_servers:\n  - host: 10.0.0.1\nmonitoring_servers:\n  - host: 10.0.0.2\ngrafana_servers:\n  - host: 10.0.0.2\n', 'ok.yaml'))).toBeUndefined();
  });

  function ctxFor(t: Topology, pool: FakePool): TlsContext {
    return fakeTlsContext({ runId: 'r', topology: t, opts: { concurrency: 2 }, pool, keepPd: undefined, removedPds: [], flags: { certDays: 1, caDays: 1, keyType: 'rsa' } });
  }

  it('preflight of tls enable/disable/rotate refuses before asking any host anything', async () => {
    const t = parseTopology('pd_servers:\n  - host: 10.0.0.1\ntiproxy_servers:\n  - host: 10.0.0.5\n', '/etc/tp.yaml');
    const pool = new FakePool();
    await expect(preflightStep(false).decide(ctxFor(t, pool) as never)).rejects.toThrow(/\/etc\/tp\.yaml:4: tiproxy_servers 10\.0\.0\.5:6000/);
    expect(pool.gets.size).toBe(0);
    expect(pool.executors.size).toBe(0);
  });

  it('encrypt and sql-tls (clusterTls: false) do not refuse for it: they go on to read the hosts', async () => {
    const t = parseTopology('pd_servers:\n  - host: 10.0.0.1\ntiproxy_servers:\n  - host: 10.0.0.5\n', '/etc/tp.yaml');
    const pool = new FakePool();
    const err = await preflightStep(false, { clusterTls: false })
      .decide(ctxFor(t, pool) as never)
      .then(() => undefined, (e: Error) => e);
    expect(err?.message ?? '').not.toMatch(/tiproxy_servers/);
    expect(pool.gets.size).toBeGreaterThan(0);
  });
});
