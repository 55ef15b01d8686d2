/**
 * TiUP topology YAML → Topology, collecting every problem with its file:line:column.
 * parseTopology/loadTopology throw TopologyError on errors; checkTopology never throws for them.
 */
import * as fs from 'fs';
import { TopologyError, type TopologyProblem } from '../errors';
import {
  ALL_ROLE_SPECS,
  COMPONENT_SOURCE_KEYS,
  COMPONENT_VERSION_KEYS,
  GLOBAL_FIELDS,
  META_KEYS,
  MONITORED_FIELDS,
  ROLE_SPECS,
  SERVER_CONFIG_KEYS,
  TOP_LEVEL_KEYS,
} from './roles';
import { buildInstance, resolveGlobal, resolveMonitored, type BuiltInstance } from './resolve';
import { checkFields, describe, isPlainObject, Problems, sectionMapping } from './schema';
import { closest } from './suggest';
import { TLS_HANDLING } from './tls-coverage';
import type { AuxInstance, AuxRoleKey, Instance, RoleKey, Topology } from './types';
import { checkDirConflicts, checkDirOverlaps, checkHasPd, checkLocalPaths, checkPdNames, checkPlatforms, checkPortConflicts } from './validate';
import { loadYamlWithPositions, YamlSyntaxError, type PosNode } from './yaml-positions';

export interface TopologyCheck {
  topology?: Topology;
  problems: TopologyProblem[];
}

/** Parse and validate; returns whatever could be resolved plus all problems (errors and warnings). */
export function analyseTopology(text: string, file: string): TopologyCheck {
  let loaded;
  try {
    loaded = loadYamlWithPositions(text);
  } catch (e) {
    if (e instanceof YamlSyntaxError) {
      const p = new Problems(file);
      p.error({ line: e.line, column: e.column }, `invalid YAML: ${e.reason}`, 'fix the YAML syntax at this position');
      return { problems: p.list };
    }
    throw e;
  }
  const p = new Problems(file, loaded);
  let data = loaded.data;
  let root: PosNode | undefined = loaded.root;
  if (data === undefined || data === null) {
    p.error({ line: 1, column: 1 }, 'the topology file is empty', 'write a TiUP topology (global, pd_servers, tikv_servers, ...)');
    return { problems: p.list };
  }
  if (!isPlainObject(data)) {
    p.error(p.at(root), `the topology must be a mapping of sections (global, pd_servers, ...), got ${describe(data)}`);
    return { problems: p.list };
  }

  // A TiUP meta.yaml wraps the topology: {user, tidb_version, topology: {...}}.
  let clusterVersion: string | undefined;
  if (isPlainObject(data.topology) && !Object.keys(data).some((k) => k.endsWith('_servers') || k === 'global')) {
    const meta = checkFields(p, data, root, Object.fromEntries(META_KEYS.map((k) => [k, k === 'topology' ? 'map' : 'string'])), 'meta.yaml');
    if (typeof meta.tidb_version === 'string') clusterVersion = meta.tidb_version;
    root = root?.entries?.get('topology')?.value;
    data = data.topology;
  }
  const top = data as Record<string, unknown>;

  for (const key of Object.keys(top)) {
    if (!TOP_LEVEL_KEYS.includes(key)) {
      const guess = closest(key, TOP_LEVEL_KEYS);
      p.warn(p.at(root?.entries?.get(key)?.key, root), `unknown section "${key}"`, guess ? `did you mean "${guess}"?` : `TiUP rejects unknown sections; known: ${TOP_LEVEL_KEYS.join(', ')}`);
    }
  }

  const globalSec = sectionMapping(p, top, root, 'global');
  const global = resolveGlobal(p, globalSec ? checkFields(p, globalSec.obj, globalSec.node, GLOBAL_FIELDS, 'global') : {}, globalSec?.node);

  const monSec = sectionMapping(p, top, root, 'monitored');
  const monitored = resolveMonitored(p, monSec ? checkFields(p, monSec.obj, monSec.node, MONITORED_FIELDS, 'monitored') : {}, monSec?.node, global);

  const serverConfigs: Record<string, Record<string, unknown>> = {};
  const scSec = sectionMapping(p, top, root, 'server_configs');
  if (scSec) {
    const checked = checkFields(p, scSec.obj, scSec.node, SERVER_CONFIG_KEYS, 'server_configs');
    for (const [k, v] of Object.entries(checked)) if (isPlainObject(v)) serverConfigs[k] = v;
  }
  const stringSection = (key: string, known: string[]): Record<string, string> => {
    const sec = sectionMapping(p, top, root, key);
    if (!sec) return {};
    const checked = checkFields(p, sec.obj, sec.node, Object.fromEntries(known.map((k) => [k, 'string' as const])), key);
    return Object.fromEntries(Object.entries(checked).filter((e): e is [string, string] => typeof e[1] === 'string'));
  };
  const componentVersions = stringSection('component_versions', COMPONENT_VERSION_KEYS);
  const componentSources = stringSection('component_sources', COMPONENT_SOURCE_KEYS);

  const built: BuiltInstance[] = [];
  let pdEntries = 0;
  for (const spec of ALL_ROLE_SPECS) {
    const value = top[spec.key];
    const entry = root?.entries?.get(spec.key);
    if (value === undefined || value === null) continue;
    if (spec.key === 'pd_servers') pdEntries = Array.isArray(value) ? value.length : -1;
    if (!Array.isArray(value)) {
      p.error(p.at(entry?.value, entry?.key), `${spec.key} must be a list of instances, got ${describe(value)}`, `write each instance as "- host: <ip>" under ${spec.key}`);
      continue;
    }
    if (!spec.managed && value.length > 0) {
      p.warn(
        p.at(entry?.key),
        `${spec.key}: tiseal does not manage ${spec.role} instances; they are only checked for port and directory conflicts`,
        `tls enable/disable/rotate refuse this topology: ${(TLS_HANDLING[spec.key as AuxRoleKey] as { why?: string }).why ?? 'not converted'}`,
      );
    } else if (TLS_HANDLING[spec.key as RoleKey]?.kind === 'refused' && value.length > 0) {
      p.warn(p.at(entry?.key), `${spec.key}: tls enable/disable/rotate refuse this topology: ${(TLS_HANDLING[spec.key as RoleKey] as { why: string }).why}`, 'encrypt and sql-tls still work on it; for cluster TLS scale these instances in first or use tiup cluster tls');
    }
    value.forEach((item, index) => {
      const node = entry?.value?.items?.[index];
      if (!isPlainObject(item)) {
        p.error(p.at(node, entry?.key), `${spec.key}[${index}] must be a mapping with at least "host", got ${describe(item)}`);
        return;
      }
      const fields = checkFields(p, item, node, spec.fields, `${spec.key}[${index}]`);
      const version = componentVersions[spec.role] ?? clusterVersion;
      const b = buildInstance(p, spec, index, item, fields, node, global, /^v?\d/.test(version ?? '') ? version : undefined);
      if (b) built.push(b);
    });
  }

  checkHasPd(p, pdEntries, root);
  checkPortConflicts(p, built, monitored, monSec?.node);
  const clashed = checkDirConflicts(p, built);
  checkDirOverlaps(p, built, monitored, monSec?.node, clashed);
  checkPdNames(p, built);
  checkPlatforms(p, built);
  checkLocalPaths(p, built);

  const managedKeys = new Set<string>(ROLE_SPECS.map((s) => s.key));
  const instances = built.filter((b) => managedKeys.has(b.spec.key)).map((b) => b.inst as Instance);
  const otherInstances = built.filter((b) => !managedKeys.has(b.spec.key)).map((b) => b.inst as AuxInstance);
  // A Set, not hosts.some(): one lookup per instance keeps 200k-instance files linear.
  const hosts: Topology['hosts'] = [];
  const seenHosts = new Set<string>();
  for (const inst of instances) {
    const host = inst.manageHost ?? inst.host;
    const key = `${host}\u0000${inst.sshPort}`;
    if (seenHosts.has(key)) continue;
    seenHosts.add(key);
    hosts.push({ host, sshPort: inst.sshPort });
  }

  const topology: Topology = {
    file,
    global,
    monitored,
    serverConfigs,
    componentVersions,
    instances,
    hosts,
    warnings: p.list.filter((x) => x.severity === 'warning'),
    otherInstances,
    componentSources,
    ...(clusterVersion !== undefined ? { clusterVersion } : {}),
  };
  return { topology, problems: sortProblems(p.list) };
}

function sortProblems(list: TopologyProblem[]): TopologyProblem[] {
  return [...list].sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Parse a topology; throws TopologyError (with every problem) if there is any error. */
export function parseTopology(text: string, file: string): Topology {
  const { topology, problems } = analyseTopology(text, file);
  if (!topology || problems.some((x) => x.severity === 'error')) throw new TopologyError(problems);
  return topology;
}

function readProblem(path: string, e: unknown): TopologyProblem {
  const code = (e as NodeJS.ErrnoException).code;
  const reason =
    code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (e as Error).message;
  return {
    file: path,
    line: 1,
    column: 1,
    severity: 'error',
    message: `cannot read the topology file: ${reason}`,
    suggestion:
      'pass the topology YAML TiUP deployed the cluster with, or its meta.yaml (~/.tiup/storage/cluster/clusters/<name>/meta.yaml); `tiup cluster template` prints an example',
  };
}

/** Read and parse a topology file; unreadable files throw TopologyError naming the path. */
export function loadTopology(path: string): Topology {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    const { suggestion, ...problem } = readProblem(path, e);
    // The suggestion travels on the error (printed once by the CLI), not inside the problem text.
    throw new TopologyError([problem], suggestion);
  }
  return parseTopology(text, path);
}

/** Never throws for topology problems: an unreadable file is reported as a problem too. */
export function checkTopology(path: string): TopologyCheck {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    return { problems: [readProblem(path, e)] };
  }
  const result = analyseTopology(text, path);
  const hasErrors = result.problems.some((x) => x.severity === 'error');
  return hasErrors ? { problems: result.problems } : result;
}

