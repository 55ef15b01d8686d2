// scripts/setup.js decides what a fresh clone needs; here with a fake machine and a recording runner.
// eslint-disable-next-line @typescript-eslint/no-var-requires
const setup = require('../../scripts/setup.js');

interface FakeMachine {
  platform?: string;
  uid?: number;
  files?: Record<string, number>; // path → mtime
  newest?: number; // newest build input
  tools?: string[];
  installed?: string[];
  filesystems?: string;
}

function fakeHost(m: FakeMachine) {
  const files: Record<string, number> = { ...(m.files ?? {}) };
  const events: string[] = [];
  return {
    events,
    host: {
      platform: m.platform ?? 'linux',
      uid: m.uid ?? 0,
      execPath: '/usr/bin/node',
      exists: (p: string) => p in files,
      mtimeMs: (p: string) => files[p],
      newestMtimeMs: () => m.newest ?? 0,
      readText: (p: string) => (p === '/proc/filesystems' ? m.filesystems ?? 'nodev\tproc\nnodev\toverlay\n' : undefined),
      which: (t: string) => (m.tools ?? ['apt-get', 'dpkg-query']).includes(t),
      installedPackages: (names: string[]) => new Set(names.filter((n) => (m.installed ?? []).includes(n))),
      npm: () => ['npm'],
      writeExecutable: (p: string, text: string) => { files[p] = 1; events.push(`write ${p} ${JSON.stringify(text)}`); },
      remove: (p: string) => { delete files[p]; events.push(`remove ${p}`); },
    },
  };
}

// A clone after `npm ci` and a build, on a Debian machine with cgroup v2.
const READY = { 'node_modules': 1, 'node_modules/.package-lock.json': 20, 'package-lock.json': 10, 'dist/src/cli.js': 30, '/sys/fs/cgroup/cgroup.controllers': 1 };
const ALL: string[] = setup.LAB_PACKAGES;

function runWith(m: FakeMachine, opts: { lab?: string; build?: boolean; check?: boolean } = {}, fail?: string) {
  const { host, events } = fakeHost(m);
  const lines: string[] = [];
  const run = (cmd: string, args: string[], env: Record<string, string>) => {
    events.push([env.DEBIAN_FRONTEND ? `DEBIAN_FRONTEND=${env.DEBIAN_FRONTEND}` : '', cmd, ...args].filter(Boolean).join(' '));
    return fail && args.includes(fail) ? 100 : 0;
  };
  const plan = setup.planSetup(host, opts);
  const code = setup.runSetup(plan, host, run, (l: string) => lines.push(l), { check: opts.check });
  return { code, events, lines };
}

describe('scripts/setup.js', () => {
  it('does nothing on a ready clone', () => {
    const r = runWith({ files: READY, newest: 5, installed: ALL });
    expect(r).toEqual({ code: 0, events: [], lines: [] });
  });

  it('runs npm ci when node_modules is missing or older than package-lock.json, and then no separate build', () => {
    const fresh = runWith({ files: { '/sys/fs/cgroup/cgroup.controllers': 1, 'package-lock.json': 10 }, newest: 50, installed: ALL });
    expect(fresh.events).toEqual(['npm ci --no-audit --no-fund']);
    expect(fresh.lines).toEqual(['setup: npm ci (node_modules is missing)']);
    const stale = runWith({ files: { ...READY, 'package-lock.json': 25 }, newest: 5, installed: ALL });
    expect(stale.events).toEqual(['npm ci --no-audit --no-fund']);
    expect(stale.lines[0]).toMatch(/package-lock.json is newer than node_modules/);
  });

  it('installs exactly the missing Debian packages, listed first, with services kept from starting', () => {
    const r = runWith({ files: READY, newest: 5, installed: ALL.filter((p) => p !== 'systemd-container' && p !== 'mariadb-client') });
    expect(r.lines).toEqual(['setup: install Debian packages the lab needs: systemd-container mariadb-client']);
    expect(r.events).toEqual([
      `write ${setup.POLICY_RC_D} "#!/bin/sh\\nexit 101\\n"`,
      'DEBIAN_FRONTEND=noninteractive apt-get update',
      'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends systemd-container mariadb-client',
      `remove ${setup.POLICY_RC_D}`,
    ]);
  });

  it('keeps an existing policy-rc.d, and removes its own even when apt fails', () => {
    const own = runWith({ files: READY, newest: 5, installed: [] }, {}, 'install');
    expect(own.code).toBe(1);
    expect(own.events[own.events.length - 1]).toBe(`remove ${setup.POLICY_RC_D}`);
    expect(own.lines[own.lines.length - 1]).toMatch(/^setup: `apt-get install .*` failed \(exit 100\)/);
    const theirs = runWith({ files: { ...READY, [setup.POLICY_RC_D]: 1 }, newest: 5, installed: ALL.slice(1) });
    expect(theirs.events.filter((e) => /policy-rc/.test(e))).toEqual([]);
  });

  it('rebuilds dist/ when a source is newer, unless the caller builds itself', () => {
    expect(runWith({ files: READY, newest: 40, installed: ALL }).events).toEqual(['/usr/bin/node node_modules/typescript/bin/tsc -p tsconfig.build.json']);
    expect(runWith({ files: READY, newest: 40, installed: ALL }, { build: false }).events).toEqual([]);
  });

  it.each([
    [{ uid: 1000 }, /missing root \(running as uid 1000\); run as root/],
    [{ platform: 'darwin' }, /missing Linux \(this is darwin\)/],
    [{ tools: [] }, /missing apt-get \(not Debian\) and systemd-nspawn\/debootstrap; install systemd-container .* mariadb-client/],
    [{ filesystems: 'nodev\tproc\n' }, /missing the overlay filesystem/],
  ])('a machine that cannot host the lab (%j) gets one line; npm ci still runs when the lab is optional', (m, why) => {
    const base = { files: { 'package-lock.json': 10, '/sys/fs/cgroup/cgroup.controllers': 1 }, installed: [] };
    const optional = runWith({ ...base, ...m });
    expect(optional.code).toBe(0);
    expect(optional.lines[0]).toMatch(why);
    expect(optional.lines[0]).toMatch(/^setup: this machine cannot host the lab: .*\(going on without the lab\)$/);
    expect(optional.events).toEqual(['npm ci --no-audit --no-fund']); // no apt-get
    const required = runWith({ ...base, ...m }, { lab: 'required' });
    expect(required.code).toBe(1);
    expect(required.lines).toHaveLength(1);
    expect(required.events).toEqual([]);
  });

  it('a non-Debian machine that already has the lab tools is not blocked', () => {
    const r = runWith({ files: READY, newest: 5, tools: ['systemd-nspawn', 'debootstrap'] }, { lab: 'required' });
    expect(r).toEqual({ code: 0, events: [], lines: [] });
  });

  it('--check says what it would do and does nothing', () => {
    const r = runWith({ files: { 'package-lock.json': 10, '/sys/fs/cgroup/cgroup.controllers': 1 }, installed: ['sudo'] }, { check: true, lab: 'required' });
    expect(r.code).toBe(0);
    expect(r.events).toEqual([]);
    expect(r.lines).toEqual(['setup: would npm ci (node_modules is missing)', `setup: would install Debian packages the lab needs: ${ALL.filter((p) => p !== 'sudo').join(' ')}`]);
  });

  it('counts a package as installed only when dpkg says so', () => {
    const out = 'curl install ok installed\netcd-server deinstall ok config-files\ntmux install ok half-configured\nsudo install ok installed\n';
    expect([...setup.installedFromDpkg(out)]).toEqual(['curl', 'sudo']);
    expect([...setup.installedFromDpkg(undefined)]).toEqual([]);
  });

  it('parses its flags and refuses unknown ones', () => {
    expect(setup.parseArgs(['--lab', 'required', '--no-build'])).toEqual({ lab: 'required', build: false, check: false });
    expect(setup.parseArgs(['--lab=optional', '--check'])).toEqual({ lab: 'optional', build: true, check: true });
    expect(() => setup.parseArgs(['--lab', 'maybe'])).toThrow(/--lab takes required or optional/);
    expect(() => setup.parseArgs(['--bogus'])).toThrow(/unknown option '--bogus'/);
  });
});
