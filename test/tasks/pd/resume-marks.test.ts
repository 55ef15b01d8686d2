/**
 * The marks a killed run leaves next to PD data dirs count only until a run verifies every PD a
 * member again: then they are closed (removing marks deleted, data dirs renamed out of the
 * evidence names, data kept), and a mark older than the last verified run recorded here does not
 * count. The scripts run for real (local sh) against a temp dir standing in for each host's disk.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tlsSteps } from '../../../src/plans/tls';
import { FakePool } from '../../../src/ssh';
import type { TlsContext } from '../../../src/tasks/context';
import { closePdMarksStep, judgeRemovedPd, markTime, readPdTrace } from '../../../src/tasks/pd/traces';
import { parseTopology, pdInstances } from '../../../src/topology';
import type { Topology } from '../../../src/topology/types';
import { fakeTlsContext } from '../../support/tls-context';

let root: string;
beforeEach(() => (root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-marks-'))));
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const RUN = '20261129T231713-ab12';
const MS = Date.UTC(2026, 10, 29, 23, 17, 20);

function topo(): Topology {
  const pds = [1, 2].map((n) => `  - host: 10.0.0.${n}\n    deploy_dir: ${root}/h${n}/deploy/pd-2379\n    data_dir: ${root}/h${n}/data/pd-2379`).join('\n');
  return parseTopology(`global:\n  user: tidb\npd_servers:\n${pds}\ntikv_servers:\n  - host: 10.0.0.1\n`, 'c.yaml');
}

function pool(): FakePool {
  const p = new FakePool();
  for (const n of [1, 2]) p.host(`10.0.0.${n}`).onExec((c) => c.includes('tiseal-'), (c) => execFileSync('sh', ['-c', c], { encoding: 'utf8' }));
  return p;
}

function context(t: Topology, p: FakePool): TlsContext {
  return fakeTlsContext({ runId: 'now', topology: t, stateDir: root, cluster: 'c', opts: { concurrency: 2 }, pool: p, keepPd: undefined, removedPds: [], flags: { keyType: 'rsa' } });
}

const mkdir = (d: string, file?: string) => {
  fs.mkdirSync(d, { recursive: true });
  if (file) fs.writeFileSync(path.join(d, file), 'x');
};

describe('closing the marks once a run verified', () => {
  it('deletes removing marks, renames data marks out of the evidence names (data kept), follows no symlink', async () => {
    const t = topo();
    const [pd1, pd2] = pdInstances(t);
    mkdir(pd2.dataDir!, 'member');
    mkdir(`${pd2.dataDir}.tiseal-removing-${RUN}`);
    mkdir(`${pd2.dataDir}.tiseal-removed-${RUN}-${MS}`, 'member');
    mkdir(`${pd2.dataDir}.tiseal-stale-${RUN}-${MS + 1}`, 'member');
    mkdir(`${root}/elsewhere`, 'keep');
    mkdir(path.dirname(pd1.dataDir!));
    fs.symlinkSync(`${root}/elsewhere`, `${pd1.dataDir}.tiseal-removed-${RUN}-${MS}`);
    const p = pool();
    const ctx = context(t, p);
    const d = await closePdMarksStep.decide(ctx);
    expect(d.actions.map((a) => a.title)).toEqual([`10.0.0.2: pd-2379.tiseal-removed-${RUN}-${MS}, pd-2379.tiseal-removing-${RUN}, pd-2379.tiseal-stale-${RUN}-${MS + 1} (removing marks deleted, data dirs renamed pd-2379.tiseal-old-*)`]);
    for (const a of d.actions) await a.run();
    expect(fs.readdirSync(path.dirname(pd2.dataDir!)).sort()).toEqual(['pd-2379', `pd-2379.tiseal-old-removed-${RUN}-${MS}`, `pd-2379.tiseal-old-stale-${RUN}-${MS + 1}`]);
    expect(fs.readFileSync(`${pd2.dataDir}.tiseal-old-removed-${RUN}-${MS}/member`, 'utf8')).toBe('x');
    // The planted symlink is neither evidence nor touched; what it points to is intact.
    expect(fs.lstatSync(`${pd1.dataDir}.tiseal-removed-${RUN}-${MS}`).isSymbolicLink()).toBe(true);
    expect(fs.readdirSync(`${root}/elsewhere`)).toEqual(['keep']);
    // Closed: a PD removed by hand now is not tiseal's, and there is nothing left to close.
    const trace = await readPdTrace(p.host('10.0.0.2'), pd2);
    expect(trace.marks).toEqual([]);
    expect(judgeRemovedPd(pd2, trace).byTiseal).toBe(false);
    expect((await closePdMarksStep.decide(ctx)).actions).toEqual([]);
  });

  it('runs after PD is scaled back out and verified, before the run is recorded', () => {
    const ids = tlsSteps(context(topo(), pool())).map((s) => s.id);
    expect(ids.slice(ids.indexOf('scale-out'), ids.indexOf('record') + 1)).toEqual(['scale-out', 'close-pd-marks', 'clear-evictions', 'record']);
  });
});

describe('a mark older than the last verified run does not count', () => {
  it('reads when a mark was made', () => {
    expect(markTime(`/d/pd.tiseal-removed-${RUN}-${MS}`)?.getTime()).toBe(MS);
    expect(markTime(`/d/pd.tiseal-removing-${RUN}`)?.toISOString()).toBe('2026-11-29T23:17:13.000Z');
  });

  it('judges by the newest mark against meta.json verifiedAt', () => {
    const t = { marks: [`/d/pd.tiseal-removed-${RUN}-${MS}`], hasData: false, backups: [] };
    expect(judgeRemovedPd({ dataDir: '/d/pd' }, t, new Date(MS - 60_000).toISOString())).toMatchObject({ byTiseal: true, runId: RUN });
    expect(judgeRemovedPd({ dataDir: '/d/pd' }, t, undefined)).toMatchObject({ byTiseal: true });
    const later = new Date(MS + 60_000).toISOString();
    expect(judgeRemovedPd({ dataDir: '/d/pd' }, t, later)).toEqual({
      byTiseal: false,
      evidence: `the newest dir a tiseal run left next to its data dir (/d/pd.tiseal-removed-${RUN}-${MS}) is older than the last verified run recorded on this machine (${later}): it was removed since, not by tiseal`,
    });
  });
});
