/**
 * Resuming with no journal: preflight reads what a killed run left on the PD hosts (the dirs
 * tiseal names after the run next to a PD's data dir) and decides from that. The trace script runs
 * for real (local sh) against a temp dir standing in for each host's disk.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FakePool } from '../../src/ssh';
import { ClusterDir } from '../../src/state/cluster-dir';
import type { GlobalOptions } from '../../src/options';
import type { PdClient, PdMember } from '../../src/pd/client';
import type { ClusterFacts, InstanceFacts } from '../../src/tasks/cluster-facts';
import { factKey } from '../../src/tasks/facts';
import { hostsShowInterruptedRun, judgeFacts, readHostEvidence } from '../../src/tasks/preflight';
import { choosePds, scaleInStep } from '../../src/tasks/pd/scale-in';
import { HostResumeContext, startPdStep } from '../../src/tasks/pd/start';
import { parseTopology, pdInstances } from '../../src/topology';
import type { Topology } from '../../src/topology/types';

jest.setTimeout(30_000);

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-resume-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const RUN = '20261129T231713-ab12';

function topo(): Topology {
  const pds = [1, 2, 3].map((n) => `  - host: 10.0.0.${n}\n    deploy_dir: ${root}/h${n}/deploy/pd-2379\n    data_dir: ${root}/h${n}/data/pd-2379`).join('\n');
  return parseTopology(`global:\n  user: tidb\npd_servers:\n${pds}\ntikv_servers:\n  - host: 10.0.0.1\ntidb_servers:\n  - host: 10.0.0.1\n`, 'c.yaml');
}

const member = (t: Topology, n: number): PdMember => {
  const p = pdInstances(t)[n - 1];
  return { name: p.name!, memberId: String(n), peerUrls: [`http://${p.host}:2380`], clientUrls: [`http://${p.host}:2379`] };
};

/** Fake hosts whose trace script and systemctl run against the temp dir; `active` units per name. */
function pool(active: Set<string>): FakePool {
  const p = new FakePool();
  for (const n of [1, 2, 3]) {
    p.host(`10.0.0.${n}`)
      .onExec((c) => c.includes('tiseal-removing-') && c.includes('tiseal-removed-'), (c) => execFileSync('sh', ['-c', c], { encoding: 'utf8' }))
      .onExec(/systemctl start '?(pd-2379\.service)'?$/, (_c, x) => void active.add(`10.0.0.${n} ${x.match![1]}`))
      .onExec(/^if \[ "\$\(systemctl show -p NeedDaemonReload/, (c) => void (/systemctl start/.test(c) && active.add(`10.0.0.${n} pd-2379.service`)));
  }
  return p;
}

function facts(t: Topology, members: PdMember[], down: string[] = []): ClusterFacts {
  const instances = new Map<string, InstanceFacts>();
  for (const i of t.instances) {
    const on = !down.includes(`${i.host} ${i.unit}`);
    instances.set(factKey(i), { config: 'off', unit: { loadState: 'loaded', activeState: on ? 'active' : 'inactive', subState: on ? 'running' : 'dead', nRestarts: 0, activeEnterUs: 0, mainPid: on ? 1 : 0 } });
  }
  const hosts = new Map([1, 2, 3].map((n) => [`10.0.0.${n}`, { host: `10.0.0.${n}`, sudo: true, clockSkewSec: 0, freeKb: {} }]));
  return { hosts, instances, members, leader: members[0], stores: [{ id: '1', address: '10.0.0.1:20160', stateName: 'Up' } as ClusterFacts['stores'][number]], pdVersion: 'v7.5.0' };
}

function context(t: Topology, p: FakePool, pd: Partial<PdClient>, want: 'on' | 'off' = 'off'): HostResumeContext {
  return {
    want,
    runId: 'now',
    topology: t,
    opts: { stateDir: root, concurrency: 4 } as GlobalOptions,
    cluster: new ClusterDir(root, 'c'),
    pool: p,
    pd: pd as PdClient,
    user: 'tidb',
    removedPds: [],
    flags: { certDays: 365, caDays: 3650, keyType: 'rsa' },
    notes: [],
    resuming: false,
  };
}

const mkdir = (d: string, file?: string) => {
  fs.mkdirSync(d, { recursive: true });
  if (file) fs.writeFileSync(path.join(d, file), 'x');
};

describe('preflight without a journal decides from the PD hosts', () => {
  it('re-adds a PD that is not a member when tiseal moved its data dir aside', async () => {
    const t = topo();
    const [, pd2] = pdInstances(t);
    mkdir(`${pd2.dataDir}.tiseal-removed-${RUN}-1764458233000`, 'member');
    const ctx = context(t, pool(new Set()), {});
    const f = facts(t, [member(t, 1), member(t, 3)], [`10.0.0.2 pd-2379.service`]);
    const ev = await readHostEvidence(ctx, f);
    expect(ev.removed.get(pd2.name!)).toMatchObject({ byTiseal: true, runId: RUN });
    expect(hostsShowInterruptedRun(ev)).toBe(true);
    const problems = judgeFacts(ctx, f, false, ev);
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    expect(problems.map((p) => p.message).join('\n')).toMatch(new RegExp(`PD ${pd2.name} is not a member: it was removed by tiseal run ${RUN} .*re-added \\(decided from the hosts`));
  });

  it('recognises a run killed between deleting the member and moving its data (the removing marker)', async () => {
    const t = topo();
    const [, pd2] = pdInstances(t);
    mkdir(pd2.dataDir!, 'member');
    mkdir(`${pd2.dataDir}.tiseal-removing-${RUN}`);
    const ev = await readHostEvidence(context(t, pool(new Set()), {}), facts(t, [member(t, 1), member(t, 3)]));
    expect(ev.removed.get(pd2.name!)).toMatchObject({ byTiseal: true, runId: RUN, evidence: expect.stringMatching(/was being removed by tiseal run/) });
  });

  it('still refuses a PD missing for another reason, with the evidence', async () => {
    const t = topo();
    const [, pd2] = pdInstances(t);
    mkdir(pd2.dataDir!, 'member'); // data, but no dir tiseal names after a run
    mkdir(`${pd2.dataDir}.old`);
    const ctx = context(t, pool(new Set()), {});
    const f = facts(t, [member(t, 1), member(t, 3)]);
    const ev = await readHostEvidence(ctx, f);
    expect(hostsShowInterruptedRun(ev)).toBe(false);
    const errors = judgeFacts(ctx, f, false, ev).filter((p) => p.severity === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toBe(`PD ${pd2.name} is in the topology but not a member of the PD cluster: no dir tiseal leaves when it removes a PD (${pd2.dataDir}.tiseal-removed-<run>-*) is on the host, and ${pd2.dataDir} holds data`);
  });

  it('ignores a symlink named like a marker (the deploy user could plant one)', async () => {
    const t = topo();
    const [, pd2] = pdInstances(t);
    mkdir(`${root}/elsewhere`);
    fs.mkdirSync(path.dirname(pd2.dataDir!), { recursive: true });
    fs.symlinkSync(`${root}/elsewhere`, `${pd2.dataDir}.tiseal-removed-${RUN}-1`);
    const ev = await readHostEvidence(context(t, pool(new Set()), {}), facts(t, [member(t, 1), member(t, 3)]));
    expect(ev.removed.get(pd2.name!)?.byTiseal).toBe(false);
  });

  it('starts the kept PD a killed run left stopped, and keeps it', async () => {
    const t = topo();
    const [pd1, pd2, pd3] = pdInstances(t);
    mkdir(pd1.dataDir!, 'member'); // the kept one: data intact, stopped
    for (const pd of [pd2, pd3]) mkdir(`${pd.dataDir}.tiseal-removed-${RUN}-1`, 'member');
    const active = new Set<string>();
    const answers = () => (active.has('10.0.0.1 pd-2379.service') ? { clusterId: '1', members: [member(t, 1)], leader: member(t, 1) } : Promise.reject(new Error('PD is not reachable')));
    const p = pool(active);
    const ctx = context(t, p, { members: async () => answers() });
    const f = facts(t, [], ['10.0.0.1 pd-2379.service', '10.0.0.2 pd-2379.service', '10.0.0.3 pd-2379.service']);
    const ev = await readHostEvidence(ctx, f);
    expect(ev.toStart.map((x) => x.name)).toEqual([pd1.name]);
    const problems = judgeFacts(ctx, f, true, ev);
    expect(problems.filter((x) => x.severity === 'error')).toEqual([]);
    expect(problems.find((x) => x.where === 'PD')?.message).toMatch(/pd-2379.service on 10.0.0.1 is stopped with its data intact .* started first \(decided from the hosts/);

    ctx.pdsToStart = ev.toStart;
    await choosePds(ctx); // PD still down: the PD to start is the one kept
    expect(ctx.keepPd?.name).toBe(pd1.name);
    const d = await startPdStep.decide(ctx);
    expect(d.actions).toHaveLength(1);
    expect(await d.actions[0].run()).toBe('PD answers');
    expect(p.host('10.0.0.1').commands().some((c) => /systemctl start '?pd-2379\.service/.test(c))).toBe(true);
    expect(p.host('10.0.0.2').commands().some((c) => /systemctl start/.test(c))).toBe(false);
    expect((await startPdStep.decide(ctx)).actions).toEqual([]); // converged: PD answers
  });

  it('refuses when no PD answers and the hosts show no tiseal run', async () => {
    const t = topo();
    for (const pd of pdInstances(t)) mkdir(pd.dataDir!, 'member');
    const ctx = context(t, pool(new Set()), {});
    const f = facts(t, [], pdInstances(t).map((p) => `${p.host} ${p.unit}`));
    const ev = await readHostEvidence(ctx, f);
    expect(ev.toStart).toEqual([]);
    const errors = judgeFacts(ctx, f, false, ev).filter((p) => p.severity === 'error');
    expect(errors[0]).toMatchObject({ where: 'PD', message: expect.stringMatching(/no PD answered .*no trace of a tiseal run/) });
  });

  it('does not start a PD whose removal was cut short (it may still hold a membership)', async () => {
    const t = topo();
    const [pd1, pd2] = pdInstances(t);
    mkdir(pd1.dataDir!, 'member');
    mkdir(pd2.dataDir!, 'member');
    mkdir(`${pd2.dataDir}.tiseal-removing-${RUN}`);
    const ev = await readHostEvidence(context(t, pool(new Set()), {}), facts(t, [], ['10.0.0.1 pd-2379.service', '10.0.0.2 pd-2379.service']));
    expect(ev.toStart.map((x) => x.name)).toEqual([pd1.name]);
  });
});

describe('scale-in leaves a marker while it removes a member', () => {
  it('creates <data>.tiseal-removing-<run> before deleting the member and drops it once the data is aside', async () => {
    const t = topo();
    const [pd1, pd2] = pdInstances(t);
    const order: string[] = [];
    const members = [member(t, 1), member(t, 2)];
    const p = new FakePool();
    const h2 = p.host('10.0.0.2');
    h2.addDir(pd2.dataDir!, { owner: 'tidb' }).addFile(`${pd2.dataDir}/member`, 'x');
    h2.onExec(/^\[ -d .*ls -A/, () => '') // the data dir holds data
      .onExec(/^systemctl show/, () => 'Id=pd-2379.service\nLoadState=loaded\nActiveState=active\n')
      .onExec(/^systemctl stop/, () => void order.push('stop'))
      .onExec(/^if \[ -d .* mv /, (c) => {
        const m = /mv -T '?([^' ]+)'? '?([^' ]+)'?;/.exec(c)!;
        h2.files.delete(m[1]);
        h2.addDir(m[2]);
        order.push('mv');
      });
    const pd = {
      members: async () => ({ clusterId: '1', members: [...members], leader: members[0] }),
      // scale-in deletes by ID (DELETE /pd/api/v1/members/id/<id>).
      call: async (_method: string, url: string) => {
        order.push(`delete-member (marker ${h2.entry(`${pd2.dataDir}.tiseal-removing-now`) ? 'present' : 'absent'})`);
        members.splice(members.findIndex((m) => url.endsWith(`/${m.memberId}`)), 1);
        return { status: 200, body: '', headers: {}, endpoint: '10.0.0.1:2379' };
      },
    };
    const ctx = context(t, p, pd);
    ctx.keepPd = pd1;
    ctx.removedPds = [pd2];
    const d = await scaleInStep.decide(ctx);
    await d.actions[0].run();
    expect(order).toEqual(['delete-member (marker present)', 'stop', 'mv']);
    expect(h2.entry(`${pd2.dataDir}.tiseal-removing-now`)).toBeUndefined();
  });
});
