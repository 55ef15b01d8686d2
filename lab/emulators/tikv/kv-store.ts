import * as fs from 'fs';
import * as path from 'path';

/**
 * The emulator's key-value data for `test.kv`: latest committed value per key with its commit ts,
 * persisted under the data dir (`emulator-kv.json`, written temp + rename). Plain text: the
 * `[security.encryption]` key dictionary is emulated, data encryption of this file is not.
 */
export interface KvEntry {
  value: string;
  commit_ts: string;
}

export class KvStore {
  private data: Record<string, KvEntry>;
  private readonly file: string;

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'emulator-kv.json');
    try {
      this.data = JSON.parse(fs.readFileSync(this.file, 'utf8')) as Record<string, KvEntry>;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`corrupted ${this.file}: ${(e as Error).message}`);
      this.data = {};
    }
  }

  /** Returns whether the key existed. Durable before it returns (fsync + rename), like a raft commit. */
  put(key: string, value: string, ts: bigint): boolean {
    const existed = Object.prototype.hasOwnProperty.call(this.data, key);
    const next = { ...this.data, [key]: { value, commit_ts: ts.toString() } };
    const tmp = `${this.file}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(next));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    this.data = next;
    return existed;
  }

  /** Snapshot read at `ts`: a value committed after the read ts is not visible. */
  get(key: string, ts: bigint): string | undefined {
    const e = Object.prototype.hasOwnProperty.call(this.data, key) ? this.data[key] : undefined;
    if (!e || BigInt(e.commit_ts) > ts) return undefined;
    return e.value;
  }
}
