import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tiseal } from '../support/cli';


const fixtures = path.join(__dirname, '..', 'fixtures', 'tiup-examples');

describe('tiseal CLI surface', () => {
  it('prints help and exits 0', async () => {
    const r = await tiseal('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/topology/);
    expect(r.out).toMatch(/tls/);
    expect(r.out).toMatch(/encrypt/);
    expect(r.out).toMatch(/audit/);
  });
  it.each([['tls', 'enable'], ['tls', 'disable'], ['tls', 'status'], ['tls', 'rotate'], ['cert', 'client'], ['encrypt', 'enable'], ['encrypt', 'rotate-key'], ['audit'], ['topology', 'check']])('%s %s --help lists the shared options', async (...verb) => {
    const r = await tiseal(...verb.filter(Boolean), '--help');
    expect(r.code).toBe(0);
    if (verb[0] !== 'topology') {
      for (const opt of ['--yes', '--dry-run', '--identity-file', '--ssh-user', '--ssh-port', '--known-hosts', '--state-dir', '--cluster-name', '--concurrency']) expect(r.out).toContain(opt);
    }
  });
  it('rejects an unknown verb with one line and exit 2', async () => {
    const r = await tiseal('tls', 'enabel', 'x.yaml');
    expect(r.code).toBe(2);
    expect(r.err.split('\n')[0]).toMatch(/^error: unknown command 'enabel'/);
    expect(r.err).toMatch(/suggestion:/);
    expect(r.out).toBe('');
  });
  it('rejects an unknown flag with exit 2', async () => {
    const r = await tiseal('tls', 'enable', 'x.yaml', '--frobnicate');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: unknown option '--frobnicate'/);
  });
  it('rejects a bad --concurrency value with exit 2', async () => {
    const r = await tiseal('tls', 'status', 'x.yaml', '-c', 'lots');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/invalid value for --concurrency: 'lots'/);
  });
  it('refuses to run enable without a terminal and without --yes, before touching anything', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-cli-'));
    try {
      const r = await tiseal('tls', 'enable', path.join(fixtures, 'minimal.yaml'), '--state-dir', dir);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/no terminal to ask for confirmation/);
      expect(r.err).toMatch(/--yes/);
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('rejects an unknown --schedule with exit 2', async () => {
    const r = await tiseal('tls', 'enable', path.join(fixtures, 'minimal.yaml'), '--yes', '--schedule', 'fast');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error: invalid --schedule 'fast'\n  suggestion: use one of: overlap, tiers, stop-all/);
  });
  it('writes --stats-file even when the command fails', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-cli-'));
    try {
      const file = path.join(dir, 'stats.json');
      const r = await tiseal('tls', 'status', path.join(dir, 'missing.yaml'), '--stats-file', file);
      expect(r.code).toBe(1);
      expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ command: 'tls status', exitCode: 1, ssh: { hosts: 0, handshakes: 0 } });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('reads options from TISEAL_* environment variables', async () => {
    process.env.TISEAL_CONCURRENCY = 'zero';
    try {
      const r = await tiseal('tls', 'status', 'x.yaml');
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/--concurrency: 'zero'/);
    } finally {
      delete process.env.TISEAL_CONCURRENCY;
    }
  });
});

describe('tiseal topology check', () => {
  it.each(['minimal.yaml', 'topology.example.yaml', 'multi-dc.yaml'])('accepts TiUP example %s', async (f) => {
    const r = await tiseal('topology', 'check', path.join(fixtures, f));
    expect(r.err).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/pd-2379\.service/);
    expect(r.out).toMatch(/instances on \d+ hosts: OK/);
  });
  it('prints TiUP default ports and dirs for minimal.yaml', async () => {
    const r = await tiseal('topology', 'check', path.join(fixtures, 'minimal.yaml'), '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    const pd = j.topology.instances.find((i: { role: string; host: string }) => i.role === 'pd' && i.host === '10.0.1.11');
    expect(pd).toBeDefined();
    expect(JSON.stringify(pd)).toContain('/tidb-deploy/pd-2379');
    expect(JSON.stringify(pd)).toContain('/tidb-data/pd-2379');
    expect(JSON.stringify(pd)).toContain('2380');
  });
  it('reports file:line:col errors and exits 1 for a broken topology', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-topo-'));
    const f = path.join(dir, 'broken.yaml');
    fs.writeFileSync(f, 'global:\n  user: tidb\npd_servers:\n  - host: 10.0.0.1\n    client_port: lots\n');
    try {
      const r = await tiseal('topology', 'check', f);
      expect(r.code).toBe(1);
      expect(r.err).toContain(`${f}:5:18`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  it('names the file when it does not exist', async () => {
    const r = await tiseal('topology', 'check', '/nonexistent/topo.yaml');
    expect(r.code).toBe(1);
    expect(r.err).toContain('/nonexistent/topo.yaml');
  });
});
