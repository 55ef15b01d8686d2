/**
 * Instances back to TiUP topology YAML, e.g. `scale-pd.yaml` (the PD members removed while
 * switching TLS) for `tiup cluster scale-out`. Resolved essentials (ports, name, absolute dirs)
 * are written out explicitly so the file means the same whatever `global` it is merged with;
 * every other field is kept as written.
 */
import * as yaml from 'js-yaml';
import { TisealError } from '../errors';
import { ALL_ROLE_SPECS, specForKey, specForRole, type RoleSpec } from './roles';
import type { AuxInstance, AuxRoleKey, Instance, RoleKey } from './types';

function entryFor(inst: Instance | AuxInstance, spec: RoleSpec): Record<string, unknown> {
  const out: Record<string, unknown> = { host: inst.host };
  if (inst.manageHost) out.manage_host = inst.manageHost;
  out.ssh_port = inst.sshPort;
  if (spec.defaultName && inst.name) out.name = inst.name;
  for (const p of spec.ports) {
    if (inst.ports[p.field] !== undefined) out[p.field] = inst.ports[p.field];
    else if (p.optional) out[p.field] = -1; // a disabled ng_port stays disabled
  }
  out.deploy_dir = inst.deployDir;
  const dataDirs = inst.dataDirs ?? (inst.dataDir ? [inst.dataDir] : []);
  if (spec.hasDataDir && dataDirs.length > 0) out.data_dir = dataDirs.join(',');
  if ('log_dir' in spec.fields) out.log_dir = inst.logDir;
  for (const [k, v] of Object.entries(inst.raw)) {
    if (!(k in out) && v !== undefined) out[k] = v;
  }
  return out;
}

/**
 * TiUP-format YAML for `instances`, grouped under their role lists in TiUP start order.
 * With `roleKey`, every instance must be of that list's role and is written under it.
 */
export function instancesToTiupYaml(instances: Array<Instance | AuxInstance>, roleKey?: RoleKey | AuxRoleKey): string {
  const groups = new Map<string, { spec: RoleSpec; entries: Record<string, unknown>[] }>();
  const forced = roleKey ? specForKey(roleKey) : undefined;
  if (roleKey && !forced) throw new TisealError(`unknown TiUP role list "${roleKey}"`, { suggestion: 'use a key such as pd_servers' });
  for (const inst of instances) {
    const spec = forced ?? (inst.roleKey ? specForKey(inst.roleKey) : undefined) ?? specForRole(inst.role);
    if (!spec) throw new TisealError(`cannot write instance ${inst.host}:${inst.port}: unknown role "${inst.role}"`);
    if (spec.role !== inst.role) {
      throw new TisealError(`cannot write ${inst.role} instance ${inst.host}:${inst.port} under ${spec.key}`, {
        suggestion: `pass only ${spec.role} instances, or no role key`,
      });
    }
    const g = groups.get(spec.key) ?? { spec, entries: [] };
    g.entries.push(entryFor(inst, spec));
    groups.set(spec.key, g);
  }
  const doc: Record<string, unknown> = {};
  for (const { spec, entries } of [...groups.values()].sort((a, b) => startIndex(a.spec) - startIndex(b.spec))) {
    doc[spec.key] = entries;
  }
  return yaml.dump(doc, { lineWidth: -1, noRefs: true });
}

function startIndex(spec: RoleSpec): number {
  return ALL_ROLE_SPECS.indexOf(spec);
}
