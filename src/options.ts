import * as os from 'os';
import * as path from 'path';
import * as fs from 'fs';
import { CertError, LocalStateError, UsageError } from './errors';
import { KEY_TYPES, type KeyType } from './pki/key-types';
import { SanBuilder } from './pki/san';
import { checkStatsFile } from './util/run-stats';
import { CHANGE_CONCURRENCY, READ_CONCURRENCY } from './util/concurrency';

/** Options shared by every command that talks to a cluster. CLI flags win over TISEAL_* env vars. */
export interface GlobalOptions {
  yes: boolean;
  dryRun: boolean;
  identityFiles: string[];
  sshUser?: string;
  sshPort?: number;
  knownHosts: string;
  acceptNewHostKeys: boolean;
  sshConfig?: string;
  stateDir: string;
  clusterName?: string;
  /** Hosts changed at once (`-c`, default CHANGE_CONCURRENCY). */
  concurrency: number;
  /** Hosts read at once by read-only verbs (`-c` when given, else READ_CONCURRENCY); use readConcurrency(). */
  readConcurrency?: number;
  json: boolean;
  /** True when a human can answer prompts (stdin and stdout are terminals). */
  interactive: boolean;
  /** Keep TiUP's meta.yaml and tls/ in step, and adopt a CA TiUP put the cluster on (false: --no-tiup-meta). */
  tiupMeta: boolean;
}

export function expandHome(p: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return p;
}

export function parsePositiveInt(value: string, flag: string, max = 65535): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    throw new UsageError(`invalid value for ${flag}: '${value}' (expected an integer 1..${max})`, `give a whole number from 1 to ${max}, e.g. ${flag} ${Math.min(max, flag === '--ssh-port' ? 22 : 5)}`);
  }
  return Number(value);
}

/** Certificate validity: what the certificate code accepts (1..36500 days), checked before anything runs. */
export const MAX_DAYS = 36_500;
export function parseDays(value: unknown, flag: string, def: number): number {
  if (value === undefined) return def;
  const v = String(value);
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > MAX_DAYS) {
    throw new UsageError(`invalid ${flag} '${v}' (expected a whole number of days, 1 to ${MAX_DAYS})`, `e.g. ${flag} ${def}`);
  }
  return Number(v);
}

/** `--key-type rsa|ecdsa`; undefined when not given (new keys are RSA, existing certificates keep their type). */
export function parseKeyType(value: unknown): KeyType | undefined {
  if (value === undefined) return undefined;
  const v = String(value);
  if (!(KEY_TYPES as readonly string[]).includes(v)) throw new UsageError(`invalid --key-type '${v}'`, `use one of: ${KEY_TYPES.join(', ')}`);
  return v as KeyType;
}

/**
 * `--extra-san san[,san...]` (every leaf) or `host=san[,san...]` (the instances on one host); each
 * name must be an IP address or a DNS name, as the certificate will hold it.
 */
export function checkExtraSans(values: string[] | undefined): string[] | undefined {
  for (const v of values ?? []) {
    const bad = (why: string) => new UsageError(`invalid --extra-san ${JSON.stringify(v)}: ${why}`, 'give IP addresses or DNS names, comma-separated, optionally after host=, e.g. --extra-san tidb.example.com or --extra-san 10.0.1.1=db1.example.com');
    if (/[\s\x00-\x1f\x7f]/.test(v)) throw bad('it contains spaces or control characters');
    const eq = v.indexOf('=');
    if (eq === 0) throw bad('no host before =');
    const names = (eq > 0 ? v.slice(eq + 1) : v).split(',');
    if (names.some((n) => n === '')) throw bad('an empty name');
    for (const n of [...(eq > 0 ? [v.slice(0, eq)] : []), ...names]) {
      try {
        new SanBuilder().addHost(n);
      } catch (e) {
        if (e instanceof CertError) throw bad(e.message);
        throw e;
      }
    }
  }
  return values;
}

/** Local files named by the shared options: a directory where a file belongs is named up front. */
export function checkLocalFiles(opts: GlobalOptions): void {
  const files: Array<[string, string | undefined]> = [['--known-hosts', opts.knownHosts], ['--ssh-config', opts.sshConfig], ...opts.identityFiles.map((f): [string, string] => ['--identity-file', f])];
  for (const [flag, file] of files) {
    const st = file ? fs.statSync(file, { throwIfNoEntry: false }) : undefined;
    if (st && !st.isFile()) {
      throw new LocalStateError(`${flag} ${file} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}`, { suggestion: `point ${flag} at a file` });
    }
  }
}

/** `-c` sets both widths; without it changing verbs go 5 wide and read-only verbs wider. */
const concurrencies = (given: number | undefined) => ({ concurrency: given ?? CHANGE_CONCURRENCY, readConcurrency: given ?? READ_CONCURRENCY });

/** Commander's parsed option bag → GlobalOptions. */
export function toGlobalOptions(raw: Record<string, unknown>): GlobalOptions {
  if (raw.statsFile !== undefined) checkStatsFile(String(raw.statsFile));
  const ids = raw.identityFile as string[] | string | undefined;
  const identityFiles = (Array.isArray(ids) ? ids : ids ? String(ids).split(path.delimiter) : []).filter(Boolean).map(expandHome);
  return {
    yes: Boolean(raw.yes),
    dryRun: Boolean(raw.dryRun),
    identityFiles,
    sshUser: raw.sshUser as string | undefined,
    sshPort: raw.sshPort === undefined ? undefined : parsePositiveInt(String(raw.sshPort), '--ssh-port'),
    knownHosts: expandHome((raw.knownHosts as string | undefined) ?? '~/.ssh/known_hosts'),
    acceptNewHostKeys: Boolean(raw.acceptNewHostKeys),
    sshConfig: raw.sshConfig ? expandHome(String(raw.sshConfig)) : undefined,
    stateDir: path.resolve(expandHome((raw.stateDir as string | undefined) ?? '~/.tiseal')),
    clusterName: raw.clusterName as string | undefined,
    ...concurrencies(raw.concurrency === undefined ? undefined : parsePositiveInt(String(raw.concurrency), '--concurrency', 256)),
    json: Boolean(raw.json),
    interactive: Boolean(process.stdin.isTTY && process.stdout.isTTY),
    tiupMeta: raw.tiupMeta !== false,
  };
}

/** Default cluster name: the topology file's base name without extension (`prod.yaml` → `prod`). */
export function clusterNameFor(topologyFile: string, explicit?: string): string {
  const name = explicit ?? path.basename(topologyFile).replace(/\.(ya?ml)$/i, '');
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new UsageError(`invalid cluster name '${name}'`, 'use letters, digits, dot, dash and underscore, e.g. --cluster-name prod');
  }
  return name;
}
