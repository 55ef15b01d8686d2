/** `tiup cluster display`-like text table of a topology's instances. */
import { allInstancesInStartOrder, instanceAddress } from './query';
import type { Topology } from './types';

const HEADERS = ['ID', 'Role', 'Host', 'Ports', 'Deploy dir', 'Data dir', 'Unit'];

/**
 * One row per instance (managed ones and the ones tiseal leaves alone), columns aligned with two
 * spaces and a dashed rule under the header, as TiUP prints its tables.
 */
export function renderInstanceTable(topology: Topology): string {
  const rows = allInstancesInStartOrder(topology).map((i) => [
    instanceAddress(i),
    i.role,
    i.host,
    Object.values(i.ports).join('/'),
    i.deployDir,
    i.dataDirs && i.dataDirs.length > 0 ? i.dataDirs.join(',') : (i.dataDir ?? '-'),
    i.unit,
  ]);
  const table = [HEADERS, HEADERS.map((h) => '-'.repeat(h.length)), ...rows];
  // reduce, not Math.max(...rows): spreading 200k arguments overflows the stack.
  const widths = HEADERS.map((_, c) => table.reduce((w, r) => Math.max(w, r[c].length), 0));
  return table.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join('  ')).join('\n');
}
