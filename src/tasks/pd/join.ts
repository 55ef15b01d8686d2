import { TisealError } from '../../errors';
import type { EtcdMember, PdClient } from '../../pd/client';
import type { Instance } from '../../topology/types';
import { shq } from '../../util/shell';

/**
 * What a PD about to join (`--join`, scale-out) finds, and what has to happen before it starts.
 * PD v6.5 … v8.5 (server/join/join.go, PrepareJoinCluster) refuse to join while any member has no
 * name ("there is a member … that has not joined successfully": a member added whose PD never
 * started) or one has their name ("missing data or join a duplicated pd"), and never remove
 * either; with a `<data-dir>/join` file they skip all that and start etcd with the membership the
 * file records. So tiseal removes such members itself (by ID: a nameless one has nothing else),
 * keeps a half-join of this very member (its `join` file) and moves any other data aside.
 */

/** `host:port` of a URL, so a member is recognised whatever scheme its peer URL was added with. */
export function hostPort(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port}`;
  } catch {
    return url;
  }
}

export const peerOf = (pd: Instance): string => `${pd.host}:${pd.ports.peer_port}`;

/** The member that is this PD: its name, or no name yet and its peer address. */
export function memberOf(pd: Instance, members: EtcdMember[]): EtcdMember | undefined {
  return members.find((m) => m.name === pd.name) ?? members.find((m) => m.name === '' && m.peerUrls.some((u) => hostPort(u) === peerOf(pd)));
}

export interface PdDataFacts {
  /** The data dir is a symlink (never used as is). */
  symlink: boolean;
  entries: string[];
  /** Content of `<data-dir>/join` (a regular file), when there is one. */
  join?: string;
  /** `<data-dir>/member` holds something (etcd's data). */
  memberData: boolean;
  /**
   * `<data-dir>/member/wal/` holds a WAL segment: etcd persisted raft state there, so this member
   * may have acknowledged entries (etcd writes the WAL before it answers; wal.Create renames
   * `wal.tmp` to `wal` only once the first segment is in place).
   */
  wal: boolean;
  /** Ports something listens on (any address, IPv4 or IPv6). */
  listening: Set<number>;
}

/**
 * One round trip, run as the deploy user (who owns the data dir; root reads nothing there): the
 * data dir's entries, its join file (base64) and whether etcd data is there; then the listening
 * sockets from /proc (no ss/netstat needed).
 */
export function pdDataFactsInner(pd: Pick<Instance, 'dataDir'>): string {
  const d = shq(pd.dataDir!);
  return [
    `if [ -L ${d} ]; then echo symlink; elif [ -d ${d} ]; then`,
    `  ls -A ${d} | sed 's/^/entry /';`,
    `  if [ -f ${d}/join ] && [ ! -L ${d}/join ]; then printf 'join '; head -c 65536 ${d}/join | base64 | tr -d '\\n'; echo; fi;`,
    `  if [ -d ${d}/member ] && [ ! -L ${d}/member ] && [ -n "$(ls -A ${d}/member)" ]; then echo member; fi;`,
    `  if [ -d ${d}/member/wal ] && [ ! -L ${d}/member ] && [ ! -L ${d}/member/wal ] && ls ${d}/member/wal | grep -q '[.]wal$'; then echo wal; fi;`,
    'fi;',
    'cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | sed "s/^/net /"',
  ].join(' ');
}

export function pdDataFactsScript(pd: Pick<Instance, 'dataDir'>, user: string): string {
  return `sudo -n -u ${shq(user)} -- sh -c ${shq(pdDataFactsInner(pd))}`;
}

/** Ports in LISTEN state (st 0A) from /proc/net/tcp{,6} lines. */
export function listeningPorts(lines: string[]): Set<number> {
  const out = new Set<number>();
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    // sl local_address rem_address st …
    if (f.length < 4 || f[3] !== '0A') continue;
    const port = parseInt(f[1].split(':').pop() ?? '', 16);
    if (Number.isFinite(port)) out.add(port);
  }
  return out;
}

export function parsePdDataFacts(stdout: string): PdDataFacts {
  const lines = stdout.split('\n');
  const joinLine = lines.find((l) => l.startsWith('join '));
  return {
    symlink: lines.includes('symlink'),
    entries: lines.filter((l) => l.startsWith('entry ')).map((l) => l.slice(6)),
    join: joinLine === undefined ? undefined : Buffer.from(joinLine.slice(5), 'base64').toString('utf8'),
    memberData: lines.includes('member'),
    wal: lines.includes('wal'),
    listening: listeningPorts(lines.filter((l) => l.startsWith('net ')).map((l) => l.slice(4))),
  };
}

export type JoinPlan =
  /** The kept PD has no quorum, two voters, the other one this member or another PD's: recover first if it never started (quorum.ts). */
  | { kind: 'recover-quorum'; blocker: EtcdMember; owner?: Instance }
  | { kind: 'refuse'; message: string; suggestion: string }
  | {
      kind: 'start';
      /** Members to remove (by ID, through the kept PD) before the start. */
      remove: Array<{ member: EtcdMember; why: string }>;
      /** Move the data dir aside (`.tiseal-stale-…`) before the start. */
      moveAside?: string;
      /** Start on the data that is there (a half-join or a member's own data): PD resumes it. */
      resume?: string;
    };

const describe = (m: EtcdMember): string => `${m.name || '(no name)'} id ${m.id} peer ${m.peerUrls.join(',')}`;

/**
 * Decide, from the members the kept PD lists (etcd's local list: it answers without a quorum),
 * whether its etcd has a quorum (quorum.ts keptHasQuorum), and what the joining PD's host holds.
 * A 'recover-quorum' plan is a candidate only: the caller forces nothing unless the blocker never
 * started (quorum.ts mayHaveRun).
 */
export function planJoin(pd: Instance, keep: Instance, pds: Instance[], members: EtcdMember[], quorum: boolean, data: PdDataFacts): JoinPlan {
  if (data.symlink) {
    return { kind: 'refuse', message: `${pd.host}: data dir ${pd.dataDir} of PD ${pd.name} is a symlink`, suggestion: `make ${pd.dataDir} a plain directory (tiseal never follows a link the deploy user controls), then re-run` };
  }
  const mine = memberOf(pd, members);
  const others = members.filter((m) => m !== mine && m.name !== keep.name);
  // Two voters, this PD one of them and stopped (the caller stops it first): no quorum, whatever a
  // leader that has not stepped down yet still says.
  const pairWithMe = members.length === 2 && mine !== undefined && members.some((m) => m.name === keep.name);
  if (!quorum || pairWithMe) {
    const owner = others.length === 1 ? pds.find((p) => p !== keep && memberOf(p, others) === others[0]) : undefined;
    if (members.length === 2 && members.some((m) => m.name === keep.name) && (mine || owner)) {
      return { kind: 'recover-quorum', blocker: mine ?? others[0], owner: mine ? pd : owner };
    }
    return {
      kind: 'refuse',
      message: `PD ${keep.name} on ${keep.host} has no leader; members: ${members.map(describe).join('; ')}`,
      suggestion: 'start the PD members that are down (systemctl start pd-<port>) so PD regains its quorum, then re-run',
    };
  }
  const remove: Array<{ member: EtcdMember; why: string }> = [];
  for (const m of others.filter((x) => x.name === '')) {
    const owner = pds.find((p) => p !== pd && p !== keep && memberOf(p, [m]) === m);
    if (!owner) {
      return {
        kind: 'refuse',
        message: `PD member ${m.id} (peer ${m.peerUrls.join(',')}) never finished joining and is no PD of the topology; PD refuses every join while it is there`,
        suggestion: `if nothing will start with that peer URL, remove it: pd-ctl member delete id ${m.id} (or DELETE /pd/api/v1/members/id/${m.id}), then re-run`,
      };
    }
    // Another PD's half-join: removed now; its data is moved aside when its own turn comes.
    remove.push({ member: m, why: `${owner.name} was added but never started` });
  }
  const peerOk = (text: string) => text.split(',').some((kv) => kv.trim().startsWith(`${pd.name}=`) && hostPort(kv.slice(kv.indexOf('=') + 1)) === peerOf(pd));
  if (data.entries.length === 0) {
    if (mine) remove.push({ member: mine, why: `${pd.name} has no data (PD would refuse: ${mine.name ? '"missing data or join a duplicated pd"' : '"there is a member … that has not joined successfully"'})` });
    return { kind: 'start', remove };
  }
  if (mine && data.join !== undefined && peerOk(data.join)) {
    return { kind: 'start', remove, resume: `${pd.dataDir}/join records this member's join (${describe(mine)}): kept, PD resumes it` };
  }
  if (mine && mine.name === pd.name && data.memberData) {
    return { kind: 'start', remove, resume: `${pd.dataDir} holds the data of member ${describe(mine)}` };
  }
  if (mine) remove.push({ member: mine, why: `its data in ${pd.dataDir} is not this member's` });
  const what = data.join !== undefined ? `a join file of a member that is gone` : data.memberData ? 'the data of an earlier membership' : `${data.entries.length} entries`;
  return { kind: 'start', remove, moveAside: `${pd.dataDir} holds ${what}` };
}

/** Ports of this PD something already listens on (checked with its unit stopped). */
export function busyPorts(pd: Instance, data: PdDataFacts): number[] {
  return [pd.ports.client_port, pd.ports.peer_port].filter((p) => data.listening.has(p));
}

/**
 * pd-server --config-check: exit 0 and, on stdout, "config check successful" or only PD's warnings
 * (configutil.PrintConfigCheckMsg). From v7.1 a config error is also exit 0 (cobra: printed, then
 * return), so the exit code alone proves nothing.
 */
export function configCheckProblem(code: number, stdout: string, stderr: string): string | undefined {
  const lines = stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  const fine = (l: string) => l === 'config check successful' || l.startsWith('Config contains undefined item: ') || / is deprecated/.test(l);
  if (code === 0 && lines.length > 0 && lines.every(fine)) return undefined;
  const out = [...lines, ...stderr.split('\n').map((l) => l.trim()).filter(Boolean)].slice(-5).join(' | ');
  return `exit ${code}${out ? `: ${out}` : ', no output'}`;
}

export function configCheckCommand(pd: Instance, user: string): string {
  const bin = `${pd.deployDir}/bin/pd-server`;
  const conf = `${pd.deployDir}/conf/pd.toml`;
  return `sudo -n -u ${shq(user)} -- ${shq(bin)} --config-check --config=${shq(conf)}`;
}

/**
 * `DELETE /pd/api/v1/members/id/<id>` through `only` (the kept PD): by ID, because a member that
 * never started has no name to delete it by. PD's refusal (etcd's text, e.g. "unhealthy cluster")
 * comes back in the error.
 */
export async function deleteMemberById(pd: PdClient, id: string, only: string[]): Promise<void> {
  if (!/^\d+$/.test(id)) throw new TisealError(`PD member ID must be a decimal uint64, got ${JSON.stringify(id)}`);
  const res = await pd.call('DELETE', `/pd/api/v1/members/id/${id}`, undefined, only);
  if (res.status < 200 || res.status >= 300) {
    throw new TisealError(`PD ${res.endpoint} refused to remove member ${id}: HTTP ${res.status}: ${res.body.trim().slice(0, 300)}`, { suggestion: `re-run the same command; if it keeps failing, remove it with pd-ctl member delete id ${id}` });
  }
}
