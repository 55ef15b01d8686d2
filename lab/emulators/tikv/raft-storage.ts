import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { DataKey } from './encryption';

/**
 * One file per region peer: `<data-dir>/emulator-raft/region-<id>.json` holding the raft hard state
 * (term, vote), the applied index, the region meta and the test.kv data of the region. Written
 * temp + fsync + rename before a message is answered (a raft write is durable before it is acked).
 * With `[security.encryption]` on, the file is encrypted with the key dictionary's data key in the
 * configured method (AES-CTR / SM4-CTR, as TiKV's data files); the header names method and IV, so
 * files written before a method change stay readable (TiKV keeps the method per file).
 */
export interface KvEntry {
  value: string;
  commit_ts: string;
  /** Older versions, most recently applied first, kept a minute of TSO time (MVCC reads at an older start ts: raft.ts readAt). */
  older?: { value: string; commit_ts: string }[];
}

export interface RegionMeta {
  id: number;
  start_key: string;
  end_key: string;
  conf_ver: number;
  peers: number[];
  peer_addresses: Record<string, string>;
  bootstrap_leader: number;
}

export interface PeerState {
  meta: RegionMeta;
  term: number;
  vote: number;
  index: number;
  /** Term of the entry at `index` (absent in files written before it was kept: 0). */
  lastTerm?: number;
  data: Record<string, KvEntry>;
}

const HEADER = 'TISEAL-EMULATOR-ENCRYPTED';
const CIPHERS: Record<string, { name: string; keyLen: number }> = {
  'aes128-ctr': { name: 'aes-128-ctr', keyLen: 16 },
  'aes192-ctr': { name: 'aes-192-ctr', keyLen: 24 },
  'aes256-ctr': { name: 'aes-256-ctr', keyLen: 32 },
  'sm4-ctr': { name: 'sm4-ctr', keyLen: 16 },
};

export class RaftStorage {
  readonly dir: string;
  constructor(dataDir: string, private readonly dataKey?: DataKey) {
    this.dir = path.join(dataDir, 'emulator-raft');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
  }

  private encode(text: string): Buffer {
    const c = this.dataKey && CIPHERS[this.dataKey.method];
    if (!c) return Buffer.from(text, 'utf8');
    const iv = crypto.randomBytes(16);
    const ci = crypto.createCipheriv(c.name, this.dataKey!.key.subarray(0, c.keyLen), iv);
    return Buffer.concat([Buffer.from(`${HEADER} ${this.dataKey!.method} ${iv.toString('hex')}\n`), ci.update(text, 'utf8'), ci.final()]);
  }

  private decode(file: string, buf: Buffer): string {
    if (!buf.subarray(0, HEADER.length).equals(Buffer.from(HEADER))) return buf.toString('utf8');
    const nl = buf.indexOf(0x0a);
    const [, method, ivHex] = buf.subarray(0, nl).toString('latin1').split(' ');
    const c = CIPHERS[method];
    if (!c || !this.dataKey) throw new Error(`${file} is encrypted (${method}) and no key dictionary opens it`);
    const de = crypto.createDecipheriv(c.name, this.dataKey.key.subarray(0, c.keyLen), Buffer.from(ivHex, 'hex'));
    return Buffer.concat([de.update(buf.subarray(nl + 1)), de.final()]).toString('utf8');
  }

  loadAll(): PeerState[] {
    const out: PeerState[] = [];
    for (const f of fs.readdirSync(this.dir)) {
      if (!/^region-\d+\.json$/.test(f)) continue;
      const file = path.join(this.dir, f);
      let st: PeerState;
      try {
        st = JSON.parse(this.decode(file, fs.readFileSync(file))) as PeerState;
      } catch (e) {
        throw new Error(`corrupted ${file}: ${(e as Error).message}`);
      }
      out.push(st);
    }
    return out;
  }

  save(st: PeerState): void {
    const file = path.join(this.dir, `region-${st.meta.id}.json`);
    const tmp = `${file}.tmp-${process.pid}`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, this.encode(JSON.stringify(st)));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  }
}
