import { formatProblem } from '../errors';
import { checkTopology, renderInstanceTable, topologyToJson } from '../topology';

/** `tiseal topology check <file> [--json]`: exit 0 with the instance table, or 1 with every problem. */
export async function run(topologyFile: string, flags: Record<string, unknown>): Promise<number> {
  const { topology, problems } = checkTopology(topologyFile);
  const errors = problems.filter((p) => p.severity === 'error');
  if (flags.json) {
    process.stdout.write(JSON.stringify({ ok: errors.length === 0, problems, topology: topology && errors.length === 0 ? topologyToJson(topology) : undefined }, null, 2) + '\n');
    return errors.length === 0 ? 0 : 1;
  }
  for (const p of problems) process.stderr.write(formatProblem(p) + '\n');
  if (errors.length > 0 || !topology) {
    process.stderr.write(`error: ${topologyFile}: ${errors.length} error(s); nothing was checked on any host\n`);
    return 1;
  }
  process.stdout.write(renderInstanceTable(topology) + '\n');
  process.stdout.write(`${topology.instances.length} instances on ${topology.hosts.length} hosts: OK\n`);
  return 0;
}
