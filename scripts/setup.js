#!/usr/bin/env node
'use strict';
/**
 * Set-up shared by `npm run demo|lab|bench`, `npm test` and `.ci/run`: npm dependencies, the Debian
 * packages the lab needs, the build. Node built-ins only: it runs before `npm ci` on a fresh clone.
 *
 *   node scripts/setup.js [--lab required|optional] [--no-build] [--check]
 *
 * --lab required (demo, lab, CI): a machine that cannot host the lab is an error (one line, exit 1).
 * --lab optional (test, bench): it is one line, and the caller runs what needs no lab.
 * --check: print what would be done, do nothing.
 */
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');

/** Debian packages the lab needs on this machine (its hosts get theirs from debootstrap). */
const LAB_PACKAGES = [
  'systemd-container', 'debootstrap', 'iproute2', 'openssh-client', 'openssh-server', 'openssl', 'curl',
  'etcd-server', 'etcd-client', 'sudo', 'tmux', 'ca-certificates', 'procps', 'patch', 'mariadb-client',
];
const POLICY_RC_D = '/usr/sbin/policy-rc.d';
// Sources whose change makes dist/ stale (compared with the build's entry point).
const BUILD_INPUTS = ['src', 'lab', 'bench', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];
const BUILD_OUTPUT = 'dist/src/cli.js';

/** Why npm dependencies must be (re)installed, or undefined. */
function npmCiReason(host) {
  if (!host.exists('node_modules')) return 'node_modules is missing';
  // npm writes node_modules/.package-lock.json at the end of every install.
  const installed = host.mtimeMs('node_modules/.package-lock.json');
  if (installed === undefined) return 'node_modules was not installed by npm ci';
  if (installed < host.mtimeMs('package-lock.json')) return 'package-lock.json is newer than node_modules';
  return undefined;
}

function buildReason(host) {
  const built = host.mtimeMs(BUILD_OUTPUT);
  if (built === undefined) return `${BUILD_OUTPUT} is missing`;
  if (host.newestMtimeMs(BUILD_INPUTS) > built) return 'sources are newer than dist/';
  return undefined;
}

/**
 * What keeps this machine from hosting the lab even after set-up: { missing, todo } or undefined.
 * Missing Debian packages are not a blocker when they can be installed here (root + apt).
 */
function labBlocker(host) {
  if (host.platform !== 'linux') return { missing: `Linux (this is ${host.platform})`, todo: 'run the lab on a Debian 12 machine or VM' };
  if (host.uid !== 0) return { missing: `root (running as uid ${host.uid})`, todo: 'run as root (sudo npm run demo, sudo npm test)' };
  const apt = host.which('apt-get') && host.which('dpkg-query');
  if (!apt && !(host.which('systemd-nspawn') && host.which('debootstrap'))) {
    return { missing: 'apt-get (not Debian) and systemd-nspawn/debootstrap', todo: `install ${LAB_PACKAGES.join(' ')} (Debian names) with your package manager, or use Debian 12` };
  }
  if (!/\toverlay\n/.test(host.readText('/proc/filesystems') || '')) return { missing: 'the overlay filesystem', todo: 'use a kernel with overlayfs (modprobe overlay), or a VM instead of a container' };
  if (!host.exists('/sys/fs/cgroup/cgroup.controllers') && !host.exists('/sys/fs/cgroup/systemd')) {
    return { missing: 'a cgroup hierarchy under /sys/fs/cgroup (systemd-nspawn needs one)', todo: 'run on a machine or VM booted with systemd, or a privileged container' };
  }
  return undefined;
}

/**
 * The set-up to do on `host`: { steps, blocker, labRequired }. Steps are { kind: 'npm-ci'|'apt'|'build', why, packages? }.
 * Pure: everything it knows about the machine comes through `host`.
 */
function planSetup(host, { lab = 'optional', build = true } = {}) {
  const steps = [];
  const ci = npmCiReason(host);
  if (ci) steps.push({ kind: 'npm-ci', why: ci });
  const blocker = labBlocker(host);
  if (!blocker && host.which('apt-get') && host.which('dpkg-query')) {
    const installed = host.installedPackages(LAB_PACKAGES);
    const missing = LAB_PACKAGES.filter((p) => !installed.has(p));
    if (missing.length) steps.push({ kind: 'apt', why: 'the lab needs them', packages: missing });
  }
  // npm ci builds too (the prepare script).
  const stale = ci ? undefined : buildReason(host);
  if (build && stale) steps.push({ kind: 'build', why: stale });
  return { steps, blocker, labRequired: lab === 'required' };
}

/** The commands of one step, as [command, args, extraEnv]. */
function stepCommands(step, host) {
  if (step.kind === 'npm-ci') {
    const [npm, ...pre] = host.npm();
    return [[npm, [...pre, 'ci', '--no-audit', '--no-fund'], {}]];
  }
  if (step.kind === 'build') return [[host.execPath, [path.join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {}]];
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  return [
    ['apt-get', ['update'], env],
    ['apt-get', ['install', '-y', '--no-install-recommends', ...step.packages], env],
  ];
}

const describe = (step) => (step.kind === 'npm-ci' ? `npm ci (${step.why})`
  : step.kind === 'build' ? `build dist/ (${step.why})`
  : `install Debian packages the lab needs: ${step.packages.join(' ')}`);

const blockerLine = (b) => `setup: this machine cannot host the lab: missing ${b.missing}; ${b.todo}`;

/**
 * Carries out the plan; `run(cmd, args, env)` returns the exit status. Returns the exit code.
 * `log` gets one line per step before it runs.
 */
function runSetup(plan, host, run, log, { check = false } = {}) {
  if (plan.blocker) {
    log(blockerLine(plan.blocker) + (plan.labRequired ? '' : ' (going on without the lab)'));
    if (plan.labRequired && !check) return 1;
  }
  for (const step of plan.steps) {
    log(`setup: ${check ? 'would ' : ''}${describe(step)}`);
    if (check) continue;
    // Keep package postinst scripts from starting services (etcd, ssh) on this machine itself.
    const policy = step.kind === 'apt' && !host.exists(POLICY_RC_D);
    if (policy) host.writeExecutable(POLICY_RC_D, '#!/bin/sh\nexit 101\n');
    try {
      for (const [cmd, args, env] of stepCommands(step, host)) {
        const status = run(cmd, args, env);
        if (status !== 0) {
          log(`setup: \`${[cmd, ...args].join(' ')}\` failed (exit ${status}): see its output above, fix it and re-run`);
          return 1;
        }
      }
    } finally {
      if (policy) host.remove(POLICY_RC_D);
    }
  }
  if (check && plan.steps.length === 0) log('setup: nothing to do');
  return 0;
}

/** Installed package names from `dpkg-query -W -f='${Package} ${Status}\n'` (a removed one reads `deinstall ok config-files`). */
function installedFromDpkg(stdout) {
  return new Set((stdout || '').split('\n').filter((l) => / install ok installed$/.test(l)).map((l) => l.split(' ')[0]));
}

function which(name) {
  const dirs = (process.env.PATH || '').split(':').concat(['/usr/local/sbin', '/usr/sbin', '/sbin']);
  return dirs.some((d) => {
    try {
      fs.accessSync(path.join(d, name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** This machine, seen from the repository root. */
function realHost(root = ROOT) {
  const abs = (p) => path.resolve(root, p);
  const mtimeMs = (p) => {
    try {
      return fs.statSync(abs(p)).mtimeMs;
    } catch {
      return undefined;
    }
  };
  const newest = (p) => {
    let st;
    try {
      st = fs.statSync(p);
    } catch {
      return 0;
    }
    if (!st.isDirectory()) return st.mtimeMs;
    return fs.readdirSync(p).reduce((m, e) => Math.max(m, newest(path.join(p, e))), st.mtimeMs);
  };
  return {
    platform: process.platform,
    uid: typeof process.getuid === 'function' ? process.getuid() : -1,
    execPath: process.execPath,
    exists: (p) => fs.existsSync(abs(p)),
    mtimeMs,
    newestMtimeMs: (paths) => Math.max(0, ...paths.map((p) => newest(abs(p)))),
    readText: (p) => {
      try {
        return fs.readFileSync(p, 'utf8');
      } catch {
        return undefined;
      }
    },
    which,
    installedPackages: (names) => installedFromDpkg(spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...names], { encoding: 'utf8' }).stdout),
    // Under `npm run`, the npm that runs us; else the one on PATH.
    npm: () => (process.env.npm_execpath && /\.c?js$/.test(process.env.npm_execpath) ? [process.execPath, process.env.npm_execpath] : ['npm']),
    writeExecutable: (p, text) => fs.writeFileSync(p, text, { mode: 0o755 }),
    remove: (p) => fs.rmSync(p, { force: true }),
  };
}

function parseArgs(argv) {
  const o = { lab: 'optional', build: true, check: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--lab' || a.startsWith('--lab=')) {
      o.lab = a.includes('=') ? a.slice(6) : argv[++i];
      if (o.lab !== 'required' && o.lab !== 'optional') throw new Error(`--lab takes required or optional, got '${o.lab}'`);
    } else if (a === '--no-build') o.build = false;
    else if (a === '--check') o.check = true;
    else throw new Error(`unknown option '${a}' (usage: node scripts/setup.js [--lab required|optional] [--no-build] [--check])`);
  }
  return o;
}

/** Runs the set-up for argv; returns the exit code. */
function main(argv, host = realHost()) {
  let o;
  try {
    o = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`setup: ${e.message}\n`);
    return 2;
  }
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) {
    process.stderr.write(`setup: Node.js ${process.versions.node} is too old: tiseal needs Node.js 20 or newer (https://nodejs.org, or nodesource's Debian packages)\n`);
    return 1;
  }
  const run = (cmd, args, env) => {
    const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', env: { ...process.env, ...env } });
    return r.error ? 127 : r.status ?? 1;
  };
  const plan = planSetup(host, o);
  return runSetup(plan, host, run, (line) => process.stderr.write(line + '\n'), { check: o.check });
}

/** For callers that cannot go on without the set-up (test/run-tests.js). */
function setupOrExit(argv) {
  const code = main(argv);
  if (code !== 0) process.exit(code);
}

module.exports = { LAB_PACKAGES, POLICY_RC_D, installedFromDpkg, npmCiReason, buildReason, labBlocker, planSetup, stepCommands, runSetup, parseArgs, main, setupOrExit, realHost };

if (require.main === module) process.exitCode = main(process.argv.slice(2));
