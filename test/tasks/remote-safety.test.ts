/**
 * Root-side file handling of the tasks on fake hosts: planted symlinks are refused before any
 * change, key backups are private and deleted once the run is verified, --clean-certificate
 * takes the backups too, and the log tail never runs a path as code.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FakeExecutor, FakePool, UnsafeRemotePathError } from '../../src/ssh';
import { certificatesStep } from '../../src/tasks/certs/issue';
import { cleanCertificatesStep } from '../../src/tasks/certs/clean';
import type { TlsContext } from '../../src/tasks/context';
import { purgeKeyBackupsStep } from '../../src/tasks/certs/key-backups';
import { logTail, writeWithBackup } from '../../src/tasks/remote';
import { stageStep } from '../../src/tasks/certs/stage';
import { parseTopology } from '../../src/topology';
import type { Step } from '../../src/engine/step';
import { deployedPool, fakeTlsContext } from '../support/deployed-pool';

jest.setTimeout(60_000);

const topoFile = path.join(__dirname, '..', '..', 'lab', 'topologies', 'default.yaml');
const topology = () => parseTopology(fs.readFileSync(topoFile, 'utf8'), topoFile);

function context(pool: FakePool, stateDir: string, want: 'on' | 'off' = 'on'): TlsContext {
  return fakeTlsContext({ want, topology: topology(), pool, stateDir });
}

async function apply(step: Step<TlsContext>, ctx: TlsContext): Promise<void> {
  const d = await step.decide(ctx);
  for (const a of d.actions) await a.run();
}

/** Every entry of a fake host under `dir`, with owner, mode and content. */
function snapshot(h: FakeExecutor, dir: string): string {
  return [...h.files.entries()]
    .filter(([p]) => p === dir || p.startsWith(`${dir}/`))
    .map(([p, e]) => `${p} ${e.owner}:${e.group} ${e.mode.toString(8)} ${e.kind === 'file' ? e.content.toString('base64') : e.kind}`)
    .sort()
    .join('\n');
}

let stateDir: string;
beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-safety-'))));
afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

describe.each([
  ['conf', (d: string) => `${d}/conf`],
  ['tls', (d: string) => `${d}/tls`],
  ['scripts', (d: string) => `${d}/scripts`],
  ['the key file', (d: string) => `${d}/tls/pd.pem`],
])('a symlink planted by the deploy user as %s', (_what, where) => {
  it('stops the stage step with an error naming host and path; root-owned files unchanged', async () => {
    const pool = deployedPool(topology());
    const ctx = context(pool, stateDir);
    await apply(certificatesStep, ctx);
    const h = pool.host('10.77.0.11');
    h.addFile('/etc/ssh/sshd_config', 'PermitRootLogin no\n', { mode: 0o644 });
    h.addFile('/etc/ssh/ssh_host_ed25519_key', 'SECRET', { mode: 0o600 });
    const link = where('/tidb-deploy/pd-2379');
    if (link.endsWith('.pem')) h.addDir('/tidb-deploy/pd-2379/tls', { owner: 'tidb' });
    else for (const k of [...h.files.keys()]) if (k === link || k.startsWith(`${link}/`)) h.files.delete(k);
    h.addSymlink(link, link.endsWith('.pem') ? '/etc/ssh/ssh_host_ed25519_key' : '/etc/ssh');
    const before = snapshot(h, '/etc');
    const err = await (async () => {
      const d = await stageStep.decide(ctx);
      for (const a of d.actions) await a.run();
    })().catch((e) => e);
    expect(err).toBeInstanceOf(UnsafeRemotePathError);
    expect(err.message).toMatch(new RegExp(`^10\\.77\\.0\\.11: refusing ${link.replace(/\./g, '\\.')}: is a symlink`));
    expect(err.message).not.toContain('\n');
    expect(snapshot(h, '/etc')).toBe(before);
  });
});

test('a replaced key is backed up 0600 in root-only 0700 dirs, and deleted (and said so) once the run is verified', async () => {
  const pool = deployedPool(topology());
  const ctx = context(pool, stateDir);
  const h = pool.host('10.77.0.11');
  const key = '/tidb-deploy/pd-2379/tls/pd.pem';
  h.addDir('/tidb-deploy/pd-2379/tls', { owner: 'tidb' });
  h.addFile(key, 'OLD KEY', { owner: 'tidb', mode: 0o644 });
  const conf = '/tidb-deploy/pd-2379/conf/pd.toml';
  const confText = h.readText(conf)!;
  const exec = await pool.get('10.77.0.11');
  await writeWithBackup(exec, key, 'NEW KEY', { deployDir: '/tidb-deploy/pd-2379', runId: 'r1', mode: 0o600, owner: 'tidb:tidb' });
  await writeWithBackup(exec, conf, 'x = 1\n', { deployDir: '/tidb-deploy/pd-2379', runId: 'r1', mode: 0o644, owner: 'tidb:tidb' });
  const bk = h.file('/tidb-deploy/pd-2379/backup/tiseal-r1/tls/pd.pem')!;
  expect([bk.content.toString(), bk.mode]).toEqual(['OLD KEY', 0o600]);
  for (const d of ['/tidb-deploy/pd-2379/backup', '/tidb-deploy/pd-2379/backup/tiseal-r1', '/tidb-deploy/pd-2379/backup/tiseal-r1/tls']) {
    expect([h.entry(d)!.owner, h.entry(d)!.mode]).toEqual(['root', 0o700]);
  }
  expect([h.file(key)!.content.toString(), h.file(key)!.mode]).toEqual(['NEW KEY', 0o600]);

  const d = await purgeKeyBackupsStep.decide(ctx);
  expect(d.actions.map((a) => a.title)).toEqual(['delete /tidb-deploy/pd-2379/backup/tiseal-r1/tls/pd.pem on 10.77.0.11 (backed-up private keys; the run is verified)']);
  for (const a of d.actions) await a.run();
  expect(h.entry('/tidb-deploy/pd-2379/backup/tiseal-r1/tls/pd.pem')).toBeUndefined();
  expect(h.readText('/tidb-deploy/pd-2379/backup/tiseal-r1/conf/pd.toml')).toBe(confText); // other backups stay
  expect(ctx.notes).toEqual(['deleted 1 backed-up private key of this run on 10.77.0.11 (the run is verified)']);
  expect((await purgeKeyBackupsStep.decide(ctx)).actions).toEqual([]);
});

test('--clean-certificate removes tls/ and the tls/ copies in every tiseal backup', async () => {
  const pool = deployedPool(topology());
  const ctx = context(pool, stateDir, 'off');
  const h = pool.host('10.77.0.11');
  h.addFile('/tidb-deploy/pd-2379/tls/pd.pem', 'KEY', { owner: 'tidb', mode: 0o600 });
  h.addFile('/tidb-deploy/pd-2379/backup/tiseal-old/tls/pd.pem', 'OLD KEY', { mode: 0o600 });
  h.addFile('/tidb-deploy/pd-2379/backup/tiseal-old/conf/pd.toml', 'a = 1');
  for (const host of pool.executors.values()) {
    // `find` is not a fake built-in: answer from the fake's own files.
    host.onExec(/^find '?([^' ]+)'? -mindepth 2/, (_c, { match, executor }) =>
      [...executor.files.keys()].filter((k) => new RegExp(`^${match![1]}/tiseal-[^/]+/tls$`).test(k)).join('\n'),
    );
  }
  await apply(cleanCertificatesStep, ctx);
  expect(h.entry('/tidb-deploy/pd-2379/tls')).toBeUndefined();
  expect(h.entry('/tidb-deploy/pd-2379/backup/tiseal-old/tls')).toBeUndefined();
  expect(h.readText('/tidb-deploy/pd-2379/backup/tiseal-old/conf/pd.toml')).toBe('a = 1');
});

test('--clean-certificate keeps a TiDB\'s tls/sql-* (sql-tls, its own CA): only the cluster files go', async () => {
  const pool = deployedPool(topology());
  const ctx = context(pool, stateDir, 'off');
  const tidb = topology().instances.find((i) => i.role === 'tidb')!;
  const h = pool.host(tidb.host);
  const tls = `${tidb.deployDir}/tls`;
  for (const f of ['ca.crt', 'tidb.crt']) h.addFile(`${tls}/${f}`, 'CERT', { owner: 'tidb', mode: 0o644 });
  h.addFile(`${tls}/tidb.pem`, 'KEY', { owner: 'tidb', mode: 0o600 });
  for (const f of ['sql-ca.crt', 'sql.crt']) h.addFile(`${tls}/${f}`, 'SQL CERT', { owner: 'tidb', mode: 0o644 });
  h.addFile(`${tls}/sql.pem`, 'SQL KEY', { owner: 'tidb', mode: 0o600 });
  for (const host of pool.executors.values()) host.onExec(/^find /, () => '');
  await apply(cleanCertificatesStep, ctx);
  for (const f of ['ca.crt', 'tidb.crt', 'tidb.pem']) expect(h.entry(`${tls}/${f}`)).toBeUndefined();
  for (const f of ['sql-ca.crt', 'sql.crt', 'sql.pem']) expect(h.entry(`${tls}/${f}`)).toBeDefined();
});

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
(isRoot ? test : test.skip)('the log tail of a failed gate never runs a log_dir as code (the command, run by sh as root)', async () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-logtail-'));
  try {
    const logDir = path.join(work, 'log"; touch pwned; echo "$(touch pwned2)');
    fs.mkdirSync(logDir);
    fs.writeFileSync(path.join(logDir, 'pd.log'), 'started\nfailed: bad config\n');
    const ex = new FakeExecutor('10.77.0.11');
    ex.onExec(() => true, (command, { sudo }) => {
      expect(sudo).toBe(true);
      const r = spawnSync('sh', ['-c', command], { cwd: work, encoding: 'utf8' });
      return { stdout: r.stdout, stderr: r.stderr, code: r.status };
    });
    const tail = await logTail(ex, [path.join(logDir, 'pd.log'), path.join(logDir, 'pd_stderr.log')], 5);
    expect(tail).toBe(`== ${path.join(logDir, 'pd.log')}\nstarted\nfailed: bad config`);
    expect(fs.readdirSync(work)).toEqual([path.basename(logDir)]);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
