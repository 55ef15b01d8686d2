/**
 * Bad flags and local inputs stop the command before any host is contacted: exit code, one-line
 * error naming the input with a suggestion, never "bug in tiseal". The topology points at a port
 * where nothing listens, so an error that came from SSH would show that it was checked too late.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { CertStore, createCA, issueLeaf } from '../../src/pki';
import { tiseal } from '../support/cli';

let dir: string;
let topo: string;
let state: string;
let knownHosts: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-inputs-'));
  topo = path.join(dir, 'prod.yaml');
  state = path.join(dir, 'state');
  knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHosts, '');
  fs.writeFileSync(topo, ['global:', '  user: tidb', '  ssh_port: 1', 'pd_servers:', '  - host: 127.0.0.1', 'tikv_servers:', '  - host: 127.0.0.1', 'tidb_servers:', '  - host: 127.0.0.1', ''].join('\n'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const run = (...args: string[]) => tiseal(...args, '--state-dir', state, '--known-hosts', knownHosts);

function expectCleanError(r: { code: number; err: string; out: string }, code: number, re: RegExp): void {
  expect(r.code).toBe(code);
  const lines = r.err.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(re);
  expect(lines[1]).toMatch(/^ {2}suggestion: /);
  expect(r.err).not.toMatch(/bug in tiseal/);
  expect(r.err).not.toMatch(/ECONNREFUSED|127\.0\.0\.1:1\b|connect/i);
}

/** Nothing under the state dir but directories and the (released, empty) lock file. */
function stateUntouched(): void {
  const files: string[] = [];
  const walk = (d: string): unknown =>
    fs.existsSync(d) &&
    fs.readdirSync(d, { withFileTypes: true }).forEach((e) => {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!(e.name === 'lock' && fs.statSync(p).size === 0)) files.push(e.name);
    });
  walk(state);
  expect(files).toEqual([]);
}

describe('flags are checked at parse time', () => {
  it.each([
    [['--cert-days', '36501'], /--cert-days/],
    [['--ca-days', '100000'], /--ca-days/],
    [['--cert-days', '0'], /--cert-days/],
    [['--extra-san', 'db vip.example'], /--extra-san/],
    [['--extra-san', 'vip.example\nevil'], /--extra-san/],
    [['--extra-san', '127.0.0.1=bad name'], /--extra-san/],
    [['--extra-san', '=vip.example'], /--extra-san/],
    [['--ca-key', '/etc/hostname'], /--ca-cert/],
    [['--ca-chain', '/etc/hostname'], /--ca-cert/],
  ])('tls enable %j', async (flags, re) => {
    expectCleanError(await run('tls', 'enable', topo, '--yes', ...flags), 2, re);
    stateUntouched();
  });
  it('tls rotate --cert-days 40000, cert client --cert-days 40000', async () => {
    expectCleanError(await run('tls', 'rotate', topo, '--yes', '--cert-days', '40000'), 2, /--cert-days/);
    expectCleanError(await run('cert', 'client', topo, '--cn', 'ops', '--out', dir, '--cert-days', '40000'), 2, /--cert-days/);
  });
});

describe('a bring-your-own CA is checked before any host is contacted', () => {
  async function pems() {
    const ca = await createCA({ cluster: 'byo', keyType: 'ecdsa' });
    const other = await createCA({ cluster: 'other', keyType: 'ecdsa' });
    const old = await createCA({ cluster: 'old', keyType: 'ecdsa', days: 1, now: new Date(Date.now() - 10 * 86_400_000) });
    const write = async (name: string, c: typeof ca) => {
      const s = new CertStore(path.join(dir, 'byo-' + name), 'x');
      await s.saveCA(c);
      return { cert: s.caCertPath, key: s.caKeyPath };
    };
    const good = await write('good', ca);
    const otherFiles = await write('other', other);
    const oldFiles = await write('old', old);
    const leaf = await issueLeaf(ca, { commonName: 'server', hosts: ['127.0.0.1'], keyType: 'ecdsa' });
    fs.writeFileSync(path.join(dir, 'leaf.crt'), leaf.certPem);
    fs.writeFileSync(path.join(dir, 'leaf.key'), leaf.keyPem);
    return { good, otherFiles, oldFiles, leaf: { cert: path.join(dir, 'leaf.crt'), key: path.join(dir, 'leaf.key') } };
  }
  it('non-CA, key mismatch, expired, unreadable', async () => {
    const p = await pems();
    const cases: Array<[string, string, RegExp]> = [
      [p.leaf.cert, p.leaf.key, /not a CA/],
      [p.good.cert, p.otherFiles.key, /does not belong/],
      [p.oldFiles.cert, p.oldFiles.key, /expired/],
      [path.join(dir, 'missing.crt'), p.good.key, /missing\.crt/],
      [dir, p.good.key, new RegExp(dir.replace(/[/.]/g, '\\$&'))],
    ];
    for (const [cert, key, re] of cases) {
      const r = await run('tls', 'enable', topo, '--yes', '--ca-cert', cert, '--ca-key', key);
      expectCleanError(r, 1, re);
    }
    stateUntouched();
  });
});

describe('certificate names and local state are checked before any host is contacted', () => {
  it('an advertised name that cannot go into a certificate', async () => {
    const bad = 'a'.repeat(64) + '.example';
    fs.writeFileSync(topo, fs.readFileSync(topo, 'utf8').replace('tikv_servers:\n  - host: 127.0.0.1\n', `tikv_servers:\n  - host: 127.0.0.1\n    advertise_addr: "${bad}:20160"\n`));
    const r = await run('tls', 'enable', topo, '--yes');
    expectCleanError(r, 1, new RegExp(`${bad}.*certificate|certificate.*${bad}`));
  });
  it('a stored CA that would expire before the new certificates', async () => {
    await new CertStore(state, 'prod').saveCA(await createCA({ cluster: 'prod', keyType: 'ecdsa', days: 10 }));
    expectCleanError(await run('tls', 'enable', topo, '--yes', '--cert-days', '365'), 1, /expires .* before 365-day certificates/);
  });
  it('a truncated meta.json is named, with what to do', async () => {
    fs.mkdirSync(path.join(state, 'clusters', 'prod'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(state, 'clusters', 'prod', 'meta.json'), '{"enableTls": tr');
    expectCleanError(await run('tls', 'enable', topo, '--yes'), 1, /meta\.json/);
  });
  it('a journal that is a directory is named', async () => {
    fs.mkdirSync(path.join(state, 'clusters', 'prod', 'journal.jsonl'), { recursive: true });
    expectCleanError(await run('tls', 'enable', topo, '--yes'), 1, /journal\.jsonl/);
  });
  it('a state dir that is a file is named', async () => {
    fs.writeFileSync(state, '');
    expectCleanError(await run('tls', 'status', topo), 1, new RegExp(state.replace(/[/.]/g, '\\$&')));
  });
  it('a --known-hosts that is a directory is named', async () => {
    const r = await tiseal('tls', 'status', topo, '--state-dir', state, '--known-hosts', dir);
    expectCleanError(r, 1, /known-hosts|known_hosts/);
    expect(r.err).toContain(dir);
  });
});

describe('--stats-file', () => {
  it('a bad path is a usage error naming it, not a bug, and does not hide the command', async () => {
    const file = path.join(knownHosts, 'stats.json'); // under a regular file
    expectCleanError(await run('tls', 'status', path.join(dir, 'missing.yaml'), '--stats-file', file), 2, /--stats-file/);
    expectCleanError(await run('tls', 'status', path.join(dir, 'missing.yaml'), '--stats-file', dir), 2, /--stats-file/);
  });
});
