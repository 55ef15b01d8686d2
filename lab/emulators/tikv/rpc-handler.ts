import type { Logger } from '../common/log';
import { NotLeader, RaftStore } from './raft';

/**
 * TiKV's server-port requests, after the rpc-server checked TLS and the CN (stand-ins for kvrpcpb
 * Get / a committed write and for raft messages between stores):
 * `kv_get <store_id> <region_id> <hex key> <ts>` → `value <hex>` | `notfound`;
 * `kv_put <store_id> <region_id> <hex key> <hex value> <ts>` → `ok <existed 0|1>`;
 * `raft <json>` → `<json>` (raft.ts). Region errors as errorpb has them: `error: StoreNotMatch …`,
 * `error: NotLeader leader=<store id, 0 = unknown>`, `error: RegionNotFound …`.
 */
export function rpcHandler(raft: RaftStore, storeId: () => string | undefined, log: Logger): (line: string) => Promise<string> {
  const text = (h: string | undefined): string => Buffer.from(h ?? '', 'hex').toString('utf8');
  return async (line) => {
    const self = storeId();
    if (!self) return 'error: unknown request';
    try {
      if (line.startsWith('raft ')) return JSON.stringify(raft.handle(JSON.parse(line.slice(5))));
      const parts = line.split(' ');
      const [op, store, region] = parts;
      if (store !== self) return `error: StoreNotMatch request_store_id=${store} actual_store_id=${self}`;
      if (op === 'kv_get' && parts.length === 5) {
        const v = await raft.get(Number(region), text(parts[3]), BigInt(parts[4]));
        return v === undefined ? 'notfound' : `value ${Buffer.from(v, 'utf8').toString('hex')}`;
      }
      if (op === 'kv_put' && parts.length === 6) return `ok ${(await raft.put(Number(region), text(parts[3]), text(parts[4]), BigInt(parts[5]))) ? 1 : 0}`;
    } catch (e) {
      if (!(e instanceof NotLeader)) log.warn('kv request failed', { error: (e as Error).message });
      return `error: ${(e as Error).message}`;
    }
    return 'error: unknown request';
  };
}
