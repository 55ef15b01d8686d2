/**
 * TiUP's defaults and directory rules (pkg/cluster/spec/spec.go setCustomDefaults,
 * instance.go DataDir/LogDir, parse_topology.go/Abs), applied to one entry at a time.
 */
import type { AuxInstance, GlobalOptions, Instance } from './types';
import { absUnderHome, cleanPath, isAbsolute, joinPath } from './paths';
import type { RoleSpec } from './roles';
import { advertiseProblem, cdcClusterIdProblem, hostProblem, memberNameProblem, numaProblem, pathProblem, timeZoneProblem } from './safe-values';
import { isPlainObject, Problems } from './schema';
import type { Pos, PosNode } from './yaml-positions';

export function normaliseArch(arch: string): string {
  const a = arch.toLowerCase();
  if (a === 'x86_64') return 'amd64';
  if (a === 'aarch64') return 'arm64';
  return a;
}

// TiUP validateUserGroup (useradd/groupadd rules).
const USER_RE = /^[a-z_]([a-z0-9_-]{0,31}|[a-z0-9_-]{0,30}\$)$/;
const GROUP_RE = /^[a-z_]([a-z0-9_-]{0,15})$/;

export function resolveGlobal(
  p: Problems,
  g: Record<string, unknown>,
  node: PosNode | undefined,
): GlobalOptions {
  const at = (k: string) => p.at(node?.entries?.get(k)?.value, node);
  const str = (k: string) => (typeof g[k] === 'string' && g[k] !== '' ? (g[k] as string) : undefined);
  const user = str('user') ?? 'tidb';
  if (!USER_RE.test(user)) {
    p.error(at('user'), `global.user "${user}" is not a valid Linux user name`, 'use lower case letters, digits, "_" or "-", starting with a letter or "_" (at most 32 characters)');
  }
  const group = str('group');
  if (group !== undefined && !GROUP_RE.test(group)) {
    p.error(at('group'), `global.group "${group}" is not a valid Linux group name`, 'use lower case letters, digits, "_" or "-", starting with a letter or "_" (at most 16 characters)');
  }
  const systemdMode = str('systemd_mode') ?? 'system';
  if (systemdMode !== 'system' && systemdMode !== 'user') {
    p.error(at('systemd_mode'), `global.systemd_mode must be "system" or "user", got "${systemdMode}"`);
  }
  const sshPort = typeof g.ssh_port === 'number' && g.ssh_port !== 0 ? g.ssh_port : 22;
  checkPortRange(p, sshPort, at('ssh_port'), 'global.ssh_port');
  for (const k of ['deploy_dir', 'data_dir', 'log_dir']) checkPath(p, str(k), at(k), `global.${k}`, k === 'data_dir');
  checkHost(p, str('listen_host'), at('listen_host'), 'global.listen_host');
  const out: GlobalOptions = {
    user,
    sshPort,
    deployDir: str('deploy_dir') ?? 'deploy',
    dataDir: str('data_dir') ?? 'data',
    arch: normaliseArch(str('arch') ?? 'amd64'),
    os: (str('os') ?? 'linux').toLowerCase(),
    systemdMode: systemdMode === 'user' ? 'user' : 'system',
    enableTls: g.enable_tls === true,
  };
  if (group !== undefined) out.group = group;
  if (str('log_dir') !== undefined) out.logDir = str('log_dir');
  if (str('listen_host') !== undefined) out.listenHost = str('listen_host');
  if (isPlainObject(g.resource_control)) out.resourceControl = g.resource_control;
  if (str('ssh_type') !== undefined) out.sshType = str('ssh_type');
  if (str('pd_mode') !== undefined) out.pdMode = str('pd_mode');
  return out;
}

/** Compare `v7.1.0`-style versions numerically; pre-release suffixes are ignored. */
export function compareVersions(a: string, b: string): number {
  const parts = (v: string) => v.replace(/^v/, '').split(/[.-]/).slice(0, 3).map((x) => parseInt(x, 10) || 0);
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
}

export function checkPortRange(p: Problems, port: number, where: Pos, path: string): boolean {
  if (port < 1 || port > 65535) {
    p.error(where, `${path}=${port} is invalid, port should be in the range [1, 65535]`);
    return false;
  }
  return true;
}

const PATH_HINT = 'use a path of letters, digits and . _ - + @ : = / only: tiseal runs commands as root with it';

/** A deploy/data/log dir as written; data dirs may list several, comma-separated (TiFlash). */
export function checkPath(p: Problems, v: string | undefined, where: Pos, path: string, list: boolean): boolean {
  if (v === undefined) return true;
  for (const part of list ? v.split(',') : [v]) {
    if (list && part === '') continue; // TiUP skips empty entries
    const why = pathProblem(part);
    if (why) {
      p.error(where, `${path} ${JSON.stringify(v)} ${why}`, PATH_HINT);
      return false;
    }
  }
  return true;
}

export function checkHost(p: Problems, v: string | undefined, where: Pos, path: string): boolean {
  const why = v === undefined ? undefined : hostProblem(v);
  if (why) p.error(where, `${path} ${JSON.stringify(v)} ${why}`, 'write an IP address or a DNS name (letters, digits, "-", ".")');
  return !why;
}

function checkFormat(p: Problems, v: string | undefined, where: Pos, path: string, check: (v: string) => string | undefined, hint: string): boolean {
  const why = v === undefined ? undefined : check(v);
  if (why) p.error(where, `${path} ${JSON.stringify(v)} ${why}`, hint);
  return !why;
}

/** `monitored` with TiUP's defaults; dirs made absolute like TiUP's ExpandRelativeDir. */
export function resolveMonitored(p: Problems, m: Record<string, unknown>, node: PosNode | undefined, g: GlobalOptions): Record<string, unknown> {
  const at = (k: string) => p.at(node?.entries?.get(k)?.value, node);
  const nodePort = typeof m.node_exporter_port === 'number' && m.node_exporter_port !== 0 ? m.node_exporter_port : 9100;
  const blackboxPort = typeof m.blackbox_exporter_port === 'number' && m.blackbox_exporter_port !== 0 ? m.blackbox_exporter_port : 9115;
  checkPortRange(p, nodePort, at('node_exporter_port'), 'monitored.node_exporter_port');
  checkPortRange(p, blackboxPort, at('blackbox_exporter_port'), 'monitored.blackbox_exporter_port');
  const str = (k: string) => (typeof m[k] === 'string' && m[k] !== '' ? (m[k] as string) : undefined);
  for (const k of ['deploy_dir', 'data_dir', 'log_dir']) checkPath(p, str(k), at(k), `monitored.${k}`, false);
  checkFormat(p, str('numa_node'), at('numa_node'), 'monitored.numa_node', numaProblem, 'write the NUMA node(s) as numactl takes them, e.g. numa_node: "0" or "0,1"');
  const deployRaw = str('deploy_dir') ?? joinPath(g.deployDir, `monitor-${nodePort}`);
  const deploy = absUnderHome(g.user, deployRaw);
  const dataRaw = str('data_dir') ?? joinPath(g.dataDir, `monitor-${nodePort}`);
  // Specification.UnmarshalYAML (spec.go) joins a relative log_dir to the deploy dir as written,
  // then ExpandRelativeDir joins it to the absolute deploy dir once more: with a relative deploy
  // dir the agents log to <deploy>/<deploy as written>/log (TiUP's parse_topology_test.go says so).
  let logRaw = str('log_dir') ?? 'log';
  if (!isAbsolute(logRaw) && !logRaw.startsWith(deployRaw)) logRaw = joinPath(deployRaw, logRaw);
  return {
    ...m,
    node_exporter_port: nodePort,
    blackbox_exporter_port: blackboxPort,
    deploy_dir: deploy,
    data_dir: isAbsolute(dataRaw) ? joinPath(dataRaw) : joinPath(deploy, dataRaw),
    log_dir: isAbsolute(logRaw) ? joinPath(logRaw) : joinPath(deploy, logRaw),
  };
}

/** Where a field of an entry is: its value if written, else the entry itself. */
export type FieldPos = (field: string) => Pos;

/** Look up `a.b.c` in a TiUP config map that may mix flattened ("storage.main.dir") and nested keys. */
export function configValue(config: unknown, path: string): unknown {
  const walk = (obj: unknown, parts: string[]): unknown => {
    if (!isPlainObject(obj)) return undefined;
    for (let i = parts.length; i >= 1; i--) {
      const key = parts.slice(0, i).join('.');
      if (key in obj) {
        if (i === parts.length) return obj[key];
        const r = walk(obj[key], parts.slice(i));
        if (r !== undefined) return r;
      }
    }
    return undefined;
  };
  return walk(config, path.split('.'));
}

/**
 * TiFlashSpec.GetOverrideDataDir: storage.latest.dir / storage.main.dir in the instance config
 * replace data_dir (first latest dir, else first main dir, then the rest sorted).
 */
function tiflashStorageDataDir(p: Problems, config: Record<string, unknown>, where: Pos, host: string): string | undefined {
  const dirs = (key: string): string[] => {
    const v = configValue(config, key);
    if (!Array.isArray(v)) return [];
    return v.filter((x): x is string => typeof x === 'string').map((x) => x.trim().replace(/\/$/, ''));
  };
  const latest = dirs('storage.latest.dir');
  const main = dirs('storage.main.dir');
  if (latest.length === 0 && main.length === 0) return undefined;
  for (const [key, list] of [['storage.latest.dir', latest], ['storage.main.dir', main]] as const) {
    for (const d of list) {
      if (!isAbsolute(d)) {
        p.error(where, `directory '${d}' should be an absolute path in 'tiflash_servers:${host}.config.${key}'`);
        return undefined;
      }
      const why = pathProblem(d);
      if (why) {
        p.error(where, `tiflash_servers:${host}.config.${key} ${JSON.stringify(d)} ${why}`, PATH_HINT);
        return undefined;
      }
    }
  }
  const first = latest[0] ?? main[0];
  const rest = [...new Set([...latest, ...main])].filter((d) => d !== first).sort();
  return [first, ...rest].join(',');
}

export interface BuiltInstance {
  inst: Instance | AuxInstance;
  spec: RoleSpec;
  index: number;
  node: PosNode | undefined;
  fieldPos: FieldPos;
  /** Data dirs written as relative paths: under the deploy dir, so TiUP skips them in its equality check. */
  relativeDataDirs: Set<string>;
}

/** One role entry → Instance with every TiUP default filled. Returns undefined when unusable (no host). */
export function buildInstance(
  p: Problems,
  spec: RoleSpec,
  index: number,
  raw: Record<string, unknown>,
  f: Record<string, unknown>,
  node: PosNode | undefined,
  g: GlobalOptions,
  /** The component's version when the file states it (component_versions, meta.yaml). */
  version?: string,
): BuiltInstance | undefined {
  const path = `${spec.key}[${index}]`;
  // A written value points at the value; an empty one (`host:`) at its key; a default at the entry.
  const fieldPos: FieldPos = (field) => {
    const e = node?.entries?.get(field);
    return p.at(e?.value && e.value.value !== null ? e.value : e?.key, node);
  };
  const entryPos = p.at(node);
  const host = typeof f.host === 'string' ? f.host : '';
  if (host === '') {
    p.error(
      node?.entries?.has('host') ? fieldPos('host') : entryPos,
      `${path} has no host`,
      `every entry of ${spec.key} needs "host: <ip or hostname>"`,
    );
    return undefined;
  }
  const str = (k: string) => (typeof f[k] === 'string' && f[k] !== '' ? (f[k] as string) : undefined);
  // An unusable host or directory would be dialled, put in a certificate or run as root: no instance.
  if (!checkHost(p, host, fieldPos('host'), `${path}.host`)) return undefined;
  checkHost(p, str('manage_host'), fieldPos('manage_host'), `${path}.manage_host`);
  if ('listen_host' in spec.fields) checkHost(p, str('listen_host'), fieldPos('listen_host'), `${path}.listen_host`);
  let pathsOk = true;
  for (const k of ['deploy_dir', 'data_dir', 'log_dir', 'tmp_path']) pathsOk = checkPath(p, str(k), fieldPos(k), `${path}.${k}`, k === 'data_dir') && pathsOk;
  if (!pathsOk) return undefined;
  const numaHint = 'write NUMA nodes and cores as numactl takes them, e.g. numa_node: "0,1", numa_cores: "0-7"';
  checkFormat(p, str('numa_node'), fieldPos('numa_node'), `${path}.numa_node`, numaProblem, numaHint);
  checkFormat(p, str('numa_cores'), fieldPos('numa_cores'), `${path}.numa_cores`, numaProblem, numaHint);
  checkFormat(p, str('ticdc_cluster_id'), fieldPos('ticdc_cluster_id'), `${path}.ticdc_cluster_id`, cdcClusterIdProblem, 'use letters and digits joined by single "-", e.g. ticdc_cluster_id: "cluster-1"');
  checkFormat(p, str('tz'), fieldPos('tz'), `${path}.tz`, timeZoneProblem, 'write an IANA time zone such as "UTC" or "Asia/Shanghai"');
  checkFormat(p, str('name'), fieldPos('name'), `${path}.name`, memberNameProblem, 'remove `name` to get the default pd-<host>-<port>, or use letters, digits, ".", "_", "-", ":"');
  for (const a of spec.advertise) checkFormat(p, str(a), fieldPos(a), `${path}.${a}`, advertiseProblem, 'write the address as host:port (or scheme://host:port)');

  const ports: Record<string, number> = {};
  for (const ps of spec.ports) {
    const v = f[ps.field];
    // creasty/defaults fills zero values, so an explicit 0 means "default" in TiUP too.
    if (ps.optional && v === -1) continue;
    if (ps.unusedSince && !(typeof v === 'number' && v !== 0) && !(version && compareVersions(version, ps.unusedSince) < 0)) continue;
    const port = typeof v === 'number' && v !== 0 ? v : ps.default;
    checkPortRange(p, port, fieldPos(ps.field), `${path}.${ps.field}`);
    ports[ps.field] = port;
  }
  const mainPort = ports[spec.mainPort];
  const dirName = `${spec.role}-${mainPort}`;

  const deployRaw = str('deploy_dir') ?? joinPath(g.deployDir, dirName);
  const deployDir = absUnderHome(g.user, deployRaw);

  let dataDirs: string[] | undefined;
  const relativeDataDirs = new Set<string>();
  if (spec.hasDataDir) {
    let dataRaw = str('data_dir') ?? (isAbsolute(g.dataDir) ? joinPath(g.dataDir, dirName) : g.dataDir);
    if (spec.role === 'tiflash' && isPlainObject(f.config)) {
      dataRaw = tiflashStorageDataDir(p, f.config, fieldPos('config'), host) ?? dataRaw;
    }
    // TiUP ExpandRelativeDir (parse_topology.go): each comma-separated entry on its own, an
    // absolute one kept, a relative one under the instance's (absolute) deploy dir.
    dataDirs = [];
    for (const part of dataRaw.split(',')) {
      const d = part.trim();
      if (d === '') continue;
      if (isAbsolute(d)) {
        dataDirs.push(cleanPath(d));
      } else {
        const abs = joinPath(deployDir, d);
        relativeDataDirs.add(abs);
        dataDirs.push(abs);
      }
    }
  }

  // Roles whose spec has no log_dir field always log to <deploy>/log (BaseInstance.LogDir).
  const hasLogField = 'log_dir' in spec.fields;
  let logRaw = hasLogField ? str('log_dir') : undefined;
  if (logRaw === undefined && hasLogField && g.logDir) {
    logRaw = isAbsolute(g.logDir) ? joinPath(g.logDir, dirName) : g.logDir;
  }
  logRaw = logRaw ?? 'log';
  const logDir = absUnderHome(g.user, isAbsolute(logRaw) ? logRaw : joinPath(deployRaw, logRaw));

  const listenField = 'listen_host' in spec.fields ? str('listen_host') : undefined;
  const listenHost = listenField ?? g.listenHost ?? (host.includes(':') ? '::' : '0.0.0.0');

  const advertise: Record<string, string> = {};
  for (const a of spec.advertise) if (str(a) !== undefined) advertise[a] = str(a)!;

  const configFiles = spec.configFiles.map((c) => joinPath(deployDir, c));
  if (spec.role === 'prometheus' && ports.ng_port !== undefined) configFiles.push(joinPath(deployDir, 'conf/ngmonitoring.toml'));

  const where = p.yaml && node ? p.yaml.pos(node.start) : { line: 1, column: 1 };
  const inst = {
    role: spec.role,
    roleKey: spec.key,
    id: dirName,
    host,
    ...(str('manage_host') !== undefined ? { manageHost: str('manage_host') } : {}),
    sshPort: typeof f.ssh_port === 'number' && f.ssh_port !== 0 ? f.ssh_port : g.sshPort,
    port: mainPort,
    ports,
    ...(spec.defaultName ? { name: str('name') ?? spec.defaultName(host, mainPort) } : {}),
    deployDir,
    ...(dataDirs && dataDirs.length > 0 ? { dataDir: dataDirs[0], dataDirs } : {}),
    logDir,
    unit: `${dirName}.service`,
    configFiles,
    runScript: joinPath(deployDir, spec.runScript),
    certName: spec.role,
    advertise,
    listenHost,
    ...(str('numa_node') !== undefined ? { numaNode: str('numa_node') } : {}),
    config: isPlainObject(f.config) ? (f.config as Record<string, unknown>) : {},
    ...(spec.role === 'tiflash' ? { learnerConfig: isPlainObject(f.learner_config) ? f.learner_config : {} } : {}),
    source: { file: p.file, line: where.line, column: where.column },
    raw,
    os: (str('os') ?? g.os).toLowerCase(),
    arch: normaliseArch(str('arch') ?? g.arch),
    ...(f.ignore_exporter === true ? { ignoreExporter: true } : {}),
    ...(f.imported === true ? { imported: true } : {}),
    ...(f.offline === true ? { offline: true } : {}),
  } as Instance | AuxInstance;
  if (typeof f.ssh_port === 'number' && f.ssh_port !== 0) checkPortRange(p, f.ssh_port, fieldPos('ssh_port'), `${path}.ssh_port`);
  return { inst, spec, index, node, fieldPos, relativeDataDirs };
}
