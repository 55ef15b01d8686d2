import * as path from 'path';
import { PreflightError } from '../../errors';
import { pdInstances } from '../../topology';
import type { Instance } from '../../topology/types';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { executorFor, TlsContext } from '../context';
import { readRemoteText } from '../remote';
import { shq } from '../../util/shell';

/**
 * A PD data dir is proven before tiseal moves it aside or creates it as root (scale-in, re-join):
 * a topology that says `data_dir: /etc` must never become `mv /etc …` (issue #26 item 2). Proof:
 * the deployed run script starts PD on that very dir (and on the topology's ports), the dir is
 * no system path, and, when it exists, it is a directory of the deploy user holding PD's data
 * (`member/`) or nothing.
 */

/** Directories (and everything below the first group) that are never a PD's data dir. */
const SYSTEM_EXACT = new Set(['/', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/usr', '/etc', '/var', '/var/lib', '/var/log', '/opt', '/home', '/root', '/srv', '/mnt', '/media', '/tmp', '/var/tmp', '/boot', '/dev', '/proc', '/sys', '/run']);
const SYSTEM_TREES = ['/etc', '/usr', '/boot', '/dev', '/proc', '/sys', '/run', '/bin', '/sbin', '/lib', '/lib64', '/root'];

export function systemPathProblem(dir: string): string | undefined {
  if (!path.posix.isAbsolute(dir)) return `${dir} is not an absolute path`;
  const d = path.posix.normalize(dir).replace(/\/+$/, '') || '/';
  if (SYSTEM_EXACT.has(d)) return `${d} is a system directory`;
  const tree = SYSTEM_TREES.find((t) => d.startsWith(`${t}/`));
  return tree ? `${d} is inside the system directory ${tree}` : undefined;
}

/** `--flag="value"` (TiUP's run scripts quote every value) or `--flag=value` of a run script. */
export function scriptFlag(script: string, flag: string): string | undefined {
  const m = new RegExp(`--${flag}=(?:"([^"]*)"|'([^']*)'|(\\S+?))\\s*\\\\?\\s*$`, 'm').exec(script);
  return m ? (m[1] ?? m[2] ?? m[3]) : undefined;
}

const portOf = (url: string | undefined) => (url ? /:(\d+)\s*$/.exec(url.split(',')[0])?.[1] : undefined);

export interface PdDirFacts {
  /** The deployed run script, if any. */
  script?: string;
  /** stat of the data dir as root (a symlink never gets here: checkRootPaths refuses it first): absent, or its type, owner and entries. */
  dir?: { isDir: boolean; owner: string; entries: string[] };
}

/** Every reason the topology's PD data dir may not be touched, naming both values where they differ. */
export function pdDataDirProblems(pd: Instance, user: string, f: PdDirFacts): string[] {
  const out: string[] = [];
  const dir = pd.dataDir ?? '';
  const sys = systemPathProblem(dir);
  if (sys) out.push(`data_dir ${sys}`);
  if (f.script !== undefined) {
    const deployed = scriptFlag(f.script, 'data-dir');
    if (deployed !== undefined && path.posix.normalize(deployed) !== path.posix.normalize(dir)) out.push(`topology says data_dir ${dir}, the deployed ${pd.runScript} starts PD on ${deployed}`);
    const client = portOf(scriptFlag(f.script, 'client-urls'));
    if (client !== undefined && client !== String(pd.ports.client_port)) out.push(`topology says client_port ${pd.ports.client_port}, the deployed run script listens on ${client}`);
    const peer = portOf(scriptFlag(f.script, 'peer-urls'));
    if (peer !== undefined && peer !== String(pd.ports.peer_port)) out.push(`topology says peer_port ${pd.ports.peer_port}, the deployed run script listens on ${peer}`);
  }
  if (f.dir) {
    if (!f.dir.isDir) out.push(`${dir} is not a directory`);
    else if (f.dir.owner !== user) out.push(`${dir} is owned by ${f.dir.owner}, not the deploy user ${user}`);
    else if (f.dir.entries.length > 0 && !f.dir.entries.includes('member') && !f.dir.entries.includes('join')) out.push(`${dir} holds no PD data (no member/), but ${f.dir.entries.slice(0, 5).join(', ')}${f.dir.entries.length > 5 ? ', …' : ''}`);
  }
  return out;
}

async function readPdDirFacts(ctx: Pick<TlsContext, 'pool'>, pd: Instance): Promise<PdDirFacts> {
  const exec = await executorFor(ctx, pd);
  const script = await readRemoteText(exec, pd.runScript);
  const st = await exec.stat(pd.dataDir!, { sudo: true }).catch(() => undefined);
  if (!st?.exists) return { script };
  const entries = st.isDirectory ? (await exec.exec(`ls -A -- ${shq(pd.dataDir!)}`, { sudo: true, allowFailure: true })).stdout.split('\n').filter(Boolean) : [];
  return { script, dir: { isDir: st.isDirectory, owner: st.owner ?? '?', entries } };
}

/** Preflight: refuse, before any change, a PD whose data dir cannot be proven (one line per PD, both values named). */
export async function checkPdDataDirs(ctx: Pick<TlsContext, 'topology' | 'pool' | 'opts' | 'user'>): Promise<void> {
  const problems = await mapLimit(pdInstances(ctx.topology), readConcurrency(ctx.opts), async (pd) => {
    const ps = pdDataDirProblems(pd, ctx.user, await readPdDirFacts(ctx, pd));
    return ps.length ? `${pd.host} PD ${pd.name}: ${ps.join('; ')}` : undefined;
  });
  const bad = problems.filter((p): p is string => Boolean(p));
  if (bad.length) {
    throw new PreflightError(`${ctx.topology.file}: ${bad.join(' | ')}`, {
      suggestion: 'make the topology say what is deployed (data_dir, ports as in the run script; `tiup cluster edit-config` keeps them in step), then re-run; nothing was changed on any host',
    });
  }
}
