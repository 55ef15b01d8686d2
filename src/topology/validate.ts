/**
 * Checks across instances, after TiUP's Specification.Validate (validate.go): port conflicts
 * (every port of every instance plus the monitoring agents on each host), deploy/data directory
 * conflicts, duplicate PD names, os/arch mismatch on one host, relative local paths.
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

export function checkDirConflicts(p: Problems, built: BuiltInstance[]): void {
  const used = new Map<string, Use>();
  for (const b of built) {
    const dirs: Array<[string, string]> = [['deploy_dir', b.inst.deployDir]];
    if (!b.dataDirRelative) for (const d of b.inst.dataDirs ?? []) dirs.push(['data_dir', d]);
    for (const [field, dir] of dirs) {
      const k = `${b.inst.host}\u0000${dir}`;
      const use = { label: label(b, field), where: b.fieldPos(field) };
      const prev = used.get(k);
      if (prev) {
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
