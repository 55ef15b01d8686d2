import * as fs from 'fs';
import * as path from 'path';
import { loadTopology, parseTopology } from '../../src/topology';
import type { Instance, Topology } from '../../src/topology/types';

export const ROOT = path.join(__dirname, '..', '..');
export const EXAMPLES = ['minimal.yaml', 'topology.example.yaml', 'multi-dc.yaml'].map((f) => path.join(ROOT, 'test', 'fixtures', 'tiup-examples', f));
export const LAB_DEFAULT = path.join(ROOT, 'lab', 'topologies', 'default.yaml');
/** TiUP's own integration topology with Pump and Drainer (tests/tiup-cluster/topo/full.yaml). */
export const TIUP_FULL = path.join(ROOT, 'test', 'fixtures', 'topology', 'tiup-full-binlog.yaml');
export const RENDERED_ROLES = ['pd', 'tikv', 'tidb', 'tiflash', 'cdc', 'pump', 'drainer'];

export function example(file: string): Topology {
  return loadTopology(file);
}

export function topo(yaml: string): Topology {
  return parseTopology(yaml, 'inline.yaml');
}

export function rendered(t: Topology): Instance[] {
  return t.instances.filter((i) => RENDERED_ROLES.includes(i.role));
}

export function one(t: Topology, role: string, host?: string): Instance {
  const i = t.instances.find((x) => x.role === role && (!host || x.host === host));
  if (!i) throw new Error(`no ${role} instance${host ? ` on ${host}` : ''}`);
  return i;
}

/** `--flag value`, `--flag=value` and `--flag "value"` from a run script's exec line. */
export function flagValue(script: string, flag: string): string | undefined {
  const re = new RegExp(`^\\s*${flag.replace(/[-]/g, '\\-')}(?:=|\\s+)("([^"]*)"|([^\\s"]+))(?:\\s|$)`, 'm');
  const m = re.exec(script);
  if (!m) return undefined;
  return m[2] ?? m[3];
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(require('os').tmpdir(), prefix));
}
