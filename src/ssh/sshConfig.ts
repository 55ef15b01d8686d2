/**
 * The subset of ssh_config(5) tiseal honours: Host blocks (patterns with `*`, `?`, `!`),
 * HostName, User, Port, IdentityFile, ProxyJump, Include. Like OpenSSH, the first value obtained
 * for a keyword wins, except IdentityFile which accumulates. `Match` blocks are skipped.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { wildcardMatch } from './knownHosts';

export interface SshConfigEntry {
  keyword: string; // lower-case
  value: string;
  file: string;
  line: number;
}

export interface SshConfigBlock {
  /** Host patterns; `null` = top of file before any Host line (applies to every host). */
  patterns: string[] | null;
  entries: SshConfigEntry[];
}

export interface JumpHost {
  user?: string;
  host: string;
  port?: number;
}

export interface ResolvedHostConfig {
  hostName?: string;
  user?: string;
  /** `file:line` of the User line that applied. */
  userFrom?: string;
  port?: number;
  identityFiles: string[];
  /** Empty when none (or `ProxyJump none`). */
  proxyJump: JumpHost[];
}

function splitArgs(value: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(value))) out.push(m[1] ?? m[2]);
  return out;
}

function expandHome(p: string, home: string): string {
  if (p === '~') return home;
  if (p.startsWith('~/')) return path.join(home, p.slice(2));
  return p;
}

export function parseSshConfig(text: string, file = 'ssh_config', depth = 0): SshConfigBlock[] {
  const home = os.homedir();
  const blocks: SshConfigBlock[] = [{ patterns: null, entries: [] }];
  let skipping = false;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(raw);
    if (!m) continue;
    const keyword = m[1].toLowerCase();
    const value = m[2].trim();
    if (keyword === 'host') {
      skipping = false;
      blocks.push({ patterns: splitArgs(value), entries: [] });
      continue;
    }
    if (keyword === 'match') {
      // Match criteria (exec, user, …) are not evaluated; `Match all` is the one we can honour.
      skipping = value.toLowerCase() !== 'all';
      if (!skipping) blocks.push({ patterns: ['*'], entries: [] });
      continue;
    }
    if (skipping) continue;
    if (keyword === 'include' && depth < 16) {
      for (const pattern of splitArgs(value)) {
        const abs = expandHome(pattern, home);
        const full = path.isAbsolute(abs) ? abs : path.join(home, '.ssh', abs);
        for (const f of globFiles(full)) {
          const included = parseSshConfig(fs.readFileSync(f, 'utf8'), f, depth + 1);
          // Included lines belong to the current block until the included file opens its own.
          const current = blocks[blocks.length - 1];
          current.entries.push(...included[0].entries);
          blocks.push(...included.slice(1));
          if (included.length > 1) blocks.push({ patterns: current.patterns, entries: [] });
        }
      }
      continue;
    }
    blocks[blocks.length - 1].entries.push({ keyword, value, file, line: i + 1 });
  }
  return blocks;
}

/** Files matching a path whose last component may hold `*`/`?`, sorted like glob(3). */
function globFiles(p: string): string[] {
  const dir = path.dirname(p);
  const base = path.basename(p);
  if (!/[*?]/.test(base)) return fs.existsSync(p) ? [p] : [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => wildcardMatch(n, base) && !(n.startsWith('.') && !base.startsWith('.')))
    .sort()
    .map((n) => path.join(dir, n));
}

/** OpenSSH Host matching: some positive pattern matches and no negated one does. */
export function hostPatternsMatch(patterns: string[], host: string): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (wildcardMatch(host, p.slice(1))) return false;
    } else if (wildcardMatch(host, p)) {
      matched = true;
    }
  }
  return matched;
}

/** `[user@]host[:port]` or `ssh://[user@]host[:port]`, IPv6 as `[addr]:port`. */
export function parseJumpHost(spec: string): JumpHost {
  let s = spec.trim();
  if (s.startsWith('ssh://')) s = s.slice(6).replace(/\/$/, '');
  let user: string | undefined;
  const at = s.lastIndexOf('@');
  if (at >= 0) {
    user = s.slice(0, at);
    s = s.slice(at + 1);
  }
  let host = s;
  let port: number | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) {
    host = v6[1];
    if (v6[2]) port = Number(v6[2]);
  } else {
    const hp = /^([^:]+):(\d+)$/.exec(s);
    if (hp) {
      host = hp[1];
      port = Number(hp[2]);
    }
  }
  if (host === '' || (port !== undefined && (port < 1 || port > 65535))) {
    throw new Error(`invalid ProxyJump host "${spec}"`);
  }
  return { user, host, port };
}

function expandTokens(value: string, tokens: Record<string, string>): string {
  return value.replace(/%(.)/g, (all, c: string) => (c === '%' ? '%' : tokens[c] ?? all));
}

/** Resolve the settings for `host` (the name as given on the command line / topology). */
export function resolveHostConfig(blocks: SshConfigBlock[], host: string): ResolvedHostConfig {
  const first = new Map<string, string>();
  const firstAt = new Map<string, string>();
  const identityFiles: string[] = [];
  for (const block of blocks) {
    if (block.patterns !== null && !hostPatternsMatch(block.patterns, host)) continue;
    for (const e of block.entries) {
      if (e.keyword === 'identityfile') identityFiles.push(e.value);
      else if (!first.has(e.keyword)) {
        first.set(e.keyword, e.value);
        firstAt.set(e.keyword, `${e.file}:${e.line}`);
      }
    }
  }
  const home = os.homedir();
  const hostName = first.has('hostname') ? expandTokens(splitArgs(first.get('hostname')!)[0] ?? host, { h: host }) : undefined;
  const user = first.has('user') ? splitArgs(first.get('user')!)[0] : undefined;
  let port: number | undefined;
  if (first.has('port')) {
    port = Number(first.get('port'));
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid Port "${first.get('port')}" for ${host}`);
  }
  let localUser = '';
  try {
    localUser = os.userInfo().username;
  } catch {
    /* no passwd entry: leave %u empty */
  }
  const tokens = { d: home, u: localUser, h: hostName ?? host, n: host, r: user ?? localUser };
  const pj = first.get('proxyjump');
  const proxyJump =
    pj === undefined || pj.toLowerCase() === 'none' ? [] : pj.split(',').filter((s) => s.trim() !== '').map(parseJumpHost);
  return {
    hostName,
    user,
    userFrom: user !== undefined ? firstAt.get('user') : undefined,
    port,
    identityFiles: identityFiles.map((f) => expandHome(expandTokens(splitArgs(f)[0] ?? f, tokens), home)),
    proxyJump,
  };
}

/** Read and resolve in one go; a missing file resolves to nothing. */
export function loadHostConfig(file: string | undefined, host: string): ResolvedHostConfig {
  if (!file || !fs.existsSync(file)) return { identityFiles: [], proxyJump: [] };
  return resolveHostConfig(parseSshConfig(fs.readFileSync(file, 'utf8'), file), host);
}
