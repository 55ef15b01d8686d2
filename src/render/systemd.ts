/** /etc/systemd/system/<role>-<port>.service as TiUP writes it (embed/templates/systemd/system.service.tpl). */
import { TisealError } from '../errors';
import type { Instance, Topology } from '../topology/types';
import { renderFile } from './template';

function str(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' ? String(v).trim() : '';
}

/** Unit file values must stay on one line; a quote would end the ExecStart string. */
function unitValue(what: string, v: string): string {
  if (/[\n\r]/.test(v)) throw new TisealError(`${what} contains a line break: ${JSON.stringify(v)}`);
  return v;
}

export function renderSystemdUnit(inst: Instance, topo: Topology): string {
  // Instance resource_control overrides global resource_control field by field, as TiUP does.
  const rc: Record<string, unknown> = { ...(topo.global.resourceControl ?? {}), ...((inst.raw?.resource_control as Record<string, unknown> | undefined) ?? {}) };
  if (inst.deployDir.includes("'")) throw new TisealError(`deploy_dir of ${inst.id} on ${inst.host} contains a single quote`);
  return renderFile('system.service.tpl', {
    serviceName: inst.role,
    user: unitValue('global.user', topo.global.user),
    deployDir: unitValue('deploy_dir', inst.deployDir),
    memoryLimit: unitValue('memory_limit', str(rc.memory_limit)),
    cpuQuota: unitValue('cpu_quota', str(rc.cpu_quota)),
    ioReadBandwidthMax: unitValue('io_read_bandwidth_max', str(rc.io_read_bandwidth_max)),
    ioWriteBandwidthMax: unitValue('io_write_bandwidth_max', str(rc.io_write_bandwidth_max)),
    limitCore: unitValue('limit_core', str(rc.limit_core)),
  });
}
