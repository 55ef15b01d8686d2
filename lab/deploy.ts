/**
 * Deploys a plaintext cluster onto running lab hosts exactly as TiUP lays it out: dirs, emulator
 * binaries at TiUP's paths, conf/*.toml, scripts/run_<role>.sh, systemd units, all owned by the
 * deploy user. One `sudo bash -s` over SSH per host and phase.
 */
import * as posix from 'path/posix';
import { TisealError } from '../src/errors';
import { renderConfig, renderRunScript, renderSystemdUnit } from '../src/render';
import type { Instance, Role, Topology } from '../src/topology/types';
import { shq } from '../src/util/shell';
import { EMULATOR_BINARIES, emulatorWrapper } from './emulators/wrapper';
import { agentFiles, agentUnits, hasMonitoring, prometheusFiles } from './monitoring';
import { sshSudoScript, SshTarget } from './ssh';

/** Roles the lab can run (emulated; prometheus is Debian's real one), in TiUP's start order. */
export const LAB_ROLES: Role[] = ['pd', 'tikv', 'pump', 'tidb', 'tiflash', 'drainer', 'cdc', 'prometheus'];

type EmulatedBinary = keyof typeof EMULATOR_BINARIES;
const BINARY_OF: Partial<Record<Role, EmulatedBinary>> = {
  pd: 'pd-server',
  tikv: 'tikv-server',
  tidb: 'tidb-server',
  tiflash: 'tiflash',
  cdc: 'cdc',
  pump: 'pump',
  drainer: 'drainer',
};

import type { DeployFile } from './deploy-file';
export type { DeployFile };

export function checkLabRoles(topo: Topology): void {
  const other = topo.instances.filter((i) => !LAB_ROLES.includes(i.role));
  if (other.length > 0) {
    const roles = [...new Set(other.map((i) => i.role))].join(', ');
    throw new TisealError(`${topo.file}: the lab cannot run ${roles} (it runs ${LAB_ROLES.join(', ')})`, {
      suggestion: 'remove those roles from the lab topology',
    });
  }
}

/** Every file of one instance, TiUP layout, plaintext. */
export function instanceFiles(inst: Instance, topo: Topology, version: string): DeployFile[] {
  if (inst.role === 'prometheus') return prometheusFiles(inst, topo, posix.basename(topo.file).replace(/\.ya?ml$/, ''), version);
  const binary = BINARY_OF[inst.role];
  if (!binary) throw new TisealError(`the lab has no emulator for ${inst.role}`);
  const files: DeployFile[] = [
    { path: posix.join(inst.deployDir, EMULATOR_BINARIES[binary]), content: emulatorWrapper(binary, { version }), mode: 0o755, owner: 'user' },
    { path: inst.runScript, content: renderRunScript(inst, topo, { tls: false, pdMode: 'initial' }), mode: 0o755, owner: 'user' },
    { path: `/etc/systemd/system/${inst.unit}`, content: renderSystemdUnit(inst, topo), mode: 0o644, owner: 'root' },
  ];
  for (const [p, content] of Object.entries(renderConfig(inst, topo, { version }))) files.push({ path: p, content, mode: 0o644, owner: 'user' });
  return files;
}

export function instanceDirs(inst: Instance): string[] {
  const dirs = [inst.deployDir, ...['bin', 'conf', 'scripts'].map((d) => posix.join(inst.deployDir, d)), inst.logDir];
  for (const d of inst.dataDirs?.length ? inst.dataDirs : inst.dataDir ? [inst.dataDir] : []) dirs.push(d);
  return dirs;
}

/** Root-run bash script that lays out every instance of `host` (or only those `only` picks: a test's scale-out). */
export function deployScript(topo: Topology, host: string, version: string, only: (i: Instance) => boolean = () => true): string {
  const user = topo.global.user;
  const group = topo.global.group || user;
  const insts = topo.instances.filter((i) => i.host === host && only(i));
  const lines = [
    'set -eu',
    'umask 022',
    `U=${shq(user)} G=${shq(group)}`,
    // TiUP's Mkdir: every component it creates is owned by the deploy user (e.g. /tidb-deploy too).
    'mkd() { local p="" c; local IFS=/; for c in $1; do [ -z "$c" ] && continue; p="$p/$c"; [ -d "$p" ] || { mkdir "$p" && chown "$U:$G" "$p"; }; done; }',
  ];
  // TiUP puts node_exporter and blackbox_exporter on every host of a monitored cluster.
  const agents = hasMonitoring(topo) ? agentFiles(topo) : { dirs: [], files: [] };
  const dirs = [...new Set([...insts.flatMap(instanceDirs), ...agents.dirs])];
  for (const d of dirs) lines.push(`mkd ${shq(d)}`);
  for (const files of [...insts.map((inst) => instanceFiles(inst, topo, version)), agents.files]) {
    for (const f of files) {
      const owner = f.owner === 'root' ? 'root:root' : `${user}:${group}`;
      const tmp = `${f.path}.tiseal-tmp`;
      lines.push(`install -d -m 755 ${f.owner === 'root' ? '' : `-o ${shq(user)} -g ${shq(group)} `}${shq(posix.dirname(f.path))}`);
      lines.push(`printf '%s' ${shq(Buffer.from(f.content).toString('base64'))} | base64 -d > ${shq(tmp)}`);
      lines.push(`chmod ${f.mode.toString(8)} ${shq(tmp)} && chown ${shq(owner)} ${shq(tmp)} && mv -f ${shq(tmp)} ${shq(f.path)}`);
    }
  }
  const units = [...insts.map((i) => i.unit), ...(hasMonitoring(topo) ? agentUnits(topo) : [])];
  lines.push('systemctl daemon-reload');
  if (units.length) lines.push(`systemctl enable ${units.map(shq).join(' ')} >/dev/null 2>&1`);
  return lines.join('\n') + '\n';
}

/** TiUP unit names the lab may have left on a host (also scaled-out extras the topology no longer lists). */
export const LAB_UNIT_PATTERN = '^(pd|tikv|tidb|tiflash|cdc|pump|drainer|prometheus|node_exporter|blackbox_exporter)-[0-9]+\\.service$';

/**
 * Root-run bash script that stops and removes every cluster unit on the host and wipes the deploy,
 * data and log dirs (of the topology and of any leftover unit), leaving a clean host.
 */
export function wipeScript(topo: Topology, host: string): string {
  const insts = topo.instances.filter((i) => i.host === host);
  const dirs = [...new Set(insts.flatMap((i) => [i.deployDir, i.logDir, ...(i.dataDirs?.length ? i.dataDirs : i.dataDir ? [i.dataDir] : [])]))];
  const roots = [topo.global.deployDir, topo.global.dataDir].filter((d) => posix.isAbsolute(d) && posix.normalize(d) !== '/');
  return [
    'set -u',
    `units=$(ls /etc/systemd/system | grep -E ${shq(LAB_UNIT_PATTERN)} || true)`,
    'leftover=""',
    'for u in $units; do',
    // The deploy dir of a unit the topology does not list (e.g. a PD scaled out by a test).
    `  d=$(sed -n "s|^ExecStart=/bin/bash -c '\\(.*\\)/scripts/run_.*|\\1|p" "/etc/systemd/system/$u")`,
    '  [ -n "$d" ] && leftover="$leftover $d"',
    'done',
    'if [ -n "$units" ]; then',
    '  systemctl stop $units >/dev/null 2>&1 || true',
    '  systemctl disable $units >/dev/null 2>&1 || true',
    '  for u in $units; do rm -f "/etc/systemd/system/$u"; done',
    '  systemctl daemon-reload',
    '  systemctl reset-failed >/dev/null 2>&1 || true',
    'fi',
    `rm -rf ${dirs.map(shq).join(' ')} $leftover`,
    ...roots.map((r) => `[ -d ${shq(r)} ] && find ${shq(r)} -mindepth 1 -maxdepth 1 -exec rm -rf {} + || true`),
    'true',
  ].join('\n') + '\n';
}

export async function deployHosts(topo: Topology, ssh: SshTarget, version: string): Promise<void> {
  await Promise.all(
    topo.hosts.map(async ({ host }) => {
      const r = await sshSudoScript(ssh, host, deployScript(topo, host, version), { allowFailure: true, timeoutMs: 120_000 });
      if (r.code !== 0) throw new TisealError(`${host}: deploying the cluster files failed (exit ${r.code}): ${r.stderr.trim().slice(-400)}`);
    }),
  );
}

export async function wipeHosts(topo: Topology, ssh: SshTarget): Promise<void> {
  await Promise.all(
    topo.hosts.map(async ({ host }) => {
      const r = await sshSudoScript(ssh, host, wipeScript(topo, host), { allowFailure: true, timeoutMs: 180_000 });
      if (r.code !== 0) throw new TisealError(`${host}: wiping the cluster failed (exit ${r.code}): ${r.stderr.trim().slice(-400)}`);
    }),
  );
}

/** `systemctl start` the units of `role` on every host at once (TiUP starts one role in parallel). */
export async function startRole(topo: Topology, role: Role, ssh: SshTarget): Promise<Instance[]> {
  const insts = topo.instances.filter((i) => i.role === role);
  const byHost = new Map<string, string[]>();
  for (const i of insts) byHost.set(i.host, [...(byHost.get(i.host) ?? []), i.unit]);
  await Promise.all(
    [...byHost].map(async ([host, units]) => {
      const r = await sshSudoScript(ssh, host, `systemctl daemon-reload && systemctl start ${units.map(shq).join(' ')}\n`, { allowFailure: true, timeoutMs: 120_000 });
      if (r.code !== 0) throw new TisealError(`${host}: starting ${units.join(', ')} failed: ${r.stderr.trim().slice(-400)}`);
    }),
  );
  return insts;
}
