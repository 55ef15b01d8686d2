/**
 * Checks across instances, after TiUP's Specification.Validate (validate.go): port conflicts
 * (every port of every instance plus the monitoring agents on each host), deploy/data directory
 * conflicts, nested data/log dirs (CheckClusterDirOverlap, and tiseal's own data-dir rule),
 * duplicate PD names, os/arch mismatch on one host, relative local paths. Each is one pass over
 * the instances with map lookups: 200k-instance files stay linear.
 */
import { isAbsolute } from './paths';
import type { BuiltInstance } from './resolve';
import type { Problems } from './schema';
import type { Pos, PosNode } from './yaml-positions';

interface Use {
  label: string; // pd_servers[0].client_port
  where: Pos;
  /** How to point at this use from another problem; defaults to its file:line:column. */
  ref?: string;
}

function label(b: BuiltInstance, field?: string): string {
  return `${b.spec.key}[${b.index}]${field ? `.${field}` : ''}`;
}

export function checkPortConflicts(
  p: Problems,
  built: BuiltInstance[],
  monitored: Record<string, unknown>,
  monitoredNode: PosNode | undefined,
): void {
  const used = new Map<string, Use>();
  const claim = (host: string, port: number, use: Use) => {
    const k = `${host}\u0000${port}`;
    const prev = used.get(k);
    if (prev) {
      p.error(
        use.where,
        `port conflict for ${port} on host ${host}: ${use.label} is also used by ${prev.label} (${prev.ref ?? p.ref(prev.where)})`,
        'give one of them another port or move it to another host',
      );
    } else {
      used.set(k, use);
    }
  };
  const seenHosts = new Set<string>();
  for (const b of built) {
    // node_exporter and blackbox_exporter run on every host of the cluster; they are claimed
    // first so a clash is reported at the instance port the user has to change.
    if (!seenHosts.has(b.inst.host)) {
      seenHosts.add(b.inst.host);
      for (const field of ['node_exporter_port', 'blackbox_exporter_port']) {
        const explicit = monitoredNode?.entries?.get(field);
        const where = explicit ? p.at(explicit.value, explicit.key) : p.at(b.node);
        claim(b.inst.host, monitored[field] as number, {
          label: `monitored.${field}`,
          where,
          ref: explicit ? p.ref(where) : `default ${String(monitored[field])}; TiUP runs ${field.replace('_port', '')} on every host`,
        });
      }
    }
    for (const [field, port] of Object.entries(b.inst.ports)) {
      claim(b.inst.host, port, { label: label(b, field), where: b.fieldPos(field) });
    }
  }
}

/** Returns the instances that share a directory with another one (already reported). */
export function checkDirConflicts(p: Problems, built: BuiltInstance[]): Set<object> {
  const clashed = new Set<object>();
  const used = new Map<string, Use & { owner: BuiltInstance }>();
  for (const b of built) {
    const dirs: Array<[string, string]> = [['deploy_dir', b.inst.deployDir]];
    // TiUP dirConflictsDetect skips relative data dirs: they sit under distinct deploy dirs.
    for (const d of b.inst.dataDirs ?? []) if (!b.relativeDataDirs.has(d)) dirs.push(['data_dir', d]);
    for (const [field, dir] of dirs) {
      const k = `${b.inst.host}\u0000${dir}`;
      const use = { label: label(b, field), where: b.fieldPos(field), owner: b };
      const prev = used.get(k);
      if (prev && prev.owner === b) continue; // one instance's own dirs: checkDirOverlaps says why
      if (prev) {
        clashed.add(prev.owner).add(b);
        p.error(
          use.where,
          `directory conflict for '${dir}' on host ${b.inst.host}: ${use.label} is also used by ${prev.label} (${p.ref(prev.where)})`,
          'give each instance on one host its own deploy_dir and data_dir',
        );
      } else {
        used.set(k, use);
      }
    }
  }
  return clashed;
}

type DirKind = 'deploy_dir' | 'data_dir' | 'log_dir';

interface DirUse extends Use {
  host: string;
  dir: string;
  kind: DirKind;
  /** The instance (or a host's monitoring agents) the directory belongs to. */
  owner: object;
  /** Position in the list, to see each pair of equal paths once. */
  seq: number;
  /** Written in the file (not a default): the place to point at. */
  written: boolean;
}

/**
 * Nested directories on one host. TiUP's CheckClusterDirOverlap (validate.go, run at deploy and
 * scale-out) refuses a data or log dir inside (or equal to) another one. tiseal also refuses a
 * data dir that holds or sits in another instance's deploy dir, or holds its own: PD's data dir
 * is moved aside at scale-in and removed when a re-add fails, and must take nothing else along.
 * Each entry looks up only its own ancestors in a map, so the check is linear in the entries
 * (times the path depth).
 */
export function checkDirOverlaps(
  p: Problems,
  built: BuiltInstance[],
  monitored: Record<string, unknown>,
  monitoredNode: PosNode | undefined,
  /** Instances already reported for sharing a directory: their other dirs clash too, said once. */
  clashed: Set<object> = new Set(),
): void {
  const uses: DirUse[] = [];
  const seenHosts = new Map<string, object>();
  for (const b of built) {
    const host = b.inst.host;
    const add = (kind: DirKind, dir: string) =>
      uses.push({ host, dir, kind, owner: b, label: label(b, kind), where: b.fieldPos(kind), seq: uses.length, written: Boolean(b.node?.entries?.has(kind)) });
    add('deploy_dir', b.inst.deployDir);
    for (const d of b.inst.dataDirs ?? []) add('data_dir', d);
    add('log_dir', b.inst.logDir);
    if (!seenHosts.has(host)) {
      // The agents' deploy and log dirs on every host (their data dir is exempt in TiUP: unused).
      const owner = {};
      seenHosts.set(host, owner);
      for (const kind of ['deploy_dir', 'log_dir'] as const) {
        const explicit = monitoredNode?.entries?.get(kind);
        const where = explicit ? p.at(explicit.value, explicit.key) : p.at(b.node);
        uses.push({ host, dir: String(monitored[kind]), kind, owner, label: `monitored.${kind}`, where, seq: uses.length, written: Boolean(explicit), ...(explicit ? {} : { ref: `default ${String(monitored[kind])} of the monitoring agents on ${host}` }) });
      }
    }
  }
  const byPath = new Map<string, DirUse[]>();
  uses.forEach((u) => {
    const k = `${u.host}\u0000${u.dir}`;
    const list = byPath.get(k);
    if (list) list.push(u);
    else byPath.set(k, [u]);
  });
  const reported = new Set<DirUse>();
  uses.forEach((u) => {
    for (let dir = u.dir; ; dir = parentDir(dir)) {
      for (const other of byPath.get(`${u.host}\u0000${dir}`) ?? []) {
        // Equal paths are seen from both sides: look only at earlier entries for those.
        if (other === u || (dir === u.dir && other.seq > u.seq)) continue;
        if (clashed.has(u.owner) && clashed.has(other.owner) && u.owner !== other.owner) continue;
        if (reported.has(u) || !overlapRefused(other, u, dir === u.dir)) continue;
        reported.add(u);
        const how = dir === u.dir ? 'is the same directory as' : 'is inside';
        // Point at what the user wrote; the other side is named with its own position.
        const [here, there] = !u.written && other.written ? [other, u] : [u, other];
        p.error(
          here.where,
          `directory overlap on host ${u.host}: ${u.label} '${u.dir}' ${how} ${other.label} '${other.dir}' (${there.label} at ${there.ref ?? p.ref(there.where)})`,
          u.kind === 'data_dir' || other.kind === 'data_dir'
            ? "give every data_dir its own directory, outside every other instance's deploy_dir, data_dir and log_dir (PD's data dir is moved aside at scale-in)"
            : 'keep data and log directories apart: TiUP refuses one inside another',
        );
      }
      if (dir === '/') break;
    }
  });
}

function parentDir(dir: string): string {
  const i = dir.lastIndexOf('/');
  return i <= 0 ? '/' : dir.slice(0, i);
}

/** `outer` is `inner` or one of its ancestors; both on the same host. */
function overlapRefused(outer: DirUse, inner: DirUse, equal: boolean): boolean {
  const same = outer.owner === inner.owner;
  // Equal deploy/data dirs of two instances are checkDirConflicts' to report.
  if (equal && !same && outer.kind !== 'log_dir' && inner.kind !== 'log_dir') return false;
  const kinds = new Set([outer.kind, inner.kind]);
  if (kinds.has('deploy_dir')) {
    if (kinds.size === 1) return false; // nested deploy dirs: TiUP allows them
    const other = outer.kind === 'deploy_dir' ? inner : outer;
    if (other.kind !== 'data_dir') return false; // a log dir in a deploy dir is TiUP's default
    // An instance's data dir may live in its own deploy dir, not hold it or be it.
    return !same || equal || outer.kind === 'data_dir';
  }
  // data/log against data/log: TiUP's IsSubDir, equality included.
  return true;
}

export function checkPdNames(p: Problems, built: BuiltInstance[]): void {
  const seen = new Map<string, BuiltInstance>();
  for (const b of built) {
    if (b.inst.role !== 'pd' || !b.inst.name) continue;
    const prev = seen.get(b.inst.name);
    if (prev) {
      p.error(
        b.fieldPos('name'),
        `PD name "${b.inst.name}" of ${label(b)} is also used by ${label(prev)} (${p.ref(prev.fieldPos('name'))})`,
        'every PD member needs a unique name; remove `name` to get the default pd-<host>-<client_port>',
      );
    } else {
      seen.set(b.inst.name, b);
    }
  }
}

/** TiUP platformConflictsDetect: one host has one os/arch. */
export function checkPlatforms(p: Problems, built: BuiltInstance[]): void {
  const seen = new Map<string, BuiltInstance>();
  for (const b of built) {
    if (b.inst.imported) continue;
    const prev = seen.get(b.inst.host);
    if (!prev) {
      seen.set(b.inst.host, b);
      continue;
    }
    if (prev.inst.os !== b.inst.os || prev.inst.arch !== b.inst.arch) {
      p.error(
        p.at(b.node),
        `platform mismatch on host ${b.inst.host}: ${label(b)} is ${b.inst.os}/${b.inst.arch} but ${label(prev)} (${p.ref(p.at(prev.node))}) is ${prev.inst.os}/${prev.inst.arch}`,
        'set the same os and arch for every instance on one host',
      );
    }
  }
}

/** TiUP RelativePathDetect: files read from the control machine must be absolute. */
export function checkLocalPaths(p: Problems, built: BuiltInstance[]): void {
  for (const b of built) {
    for (const field of ['rule_dir', 'dashboard_dir', 'config_file']) {
      const v = b.inst.raw[field];
      if (typeof v === 'string' && v !== '' && !isAbsolute(v)) {
        p.error(b.fieldPos(field), `relative path is not allowed for field ${field}: ${v}`, 'use an absolute path on the control machine');
      }
    }
  }
}

/**
 * PD is mandatory: without it nothing else can start. `entries` = PD entries written in the file,
 * -1 when pd_servers is not a list (already reported).
 */
export function checkHasPd(p: Problems, entries: number, root: PosNode | undefined): void {
  if (entries !== 0) return; // broken entries were reported where they are
  const entry = root?.entries?.get('pd_servers');
  p.error(
    entry ? p.at(entry.key) : { line: 1, column: 1 },
    entry ? 'pd_servers is empty' : 'the topology has no pd_servers',
    'add at least one PD entry under pd_servers, e.g. "- host: 10.0.1.11"',
  );
}
