import * as fs from 'fs';
import { writeFileAtomic } from './files';

/** What tiseal last verified about a cluster (`meta.json`), written only after verification. */
export interface ClusterMeta {
  enableTls: boolean;
  verifiedAt?: string;
  verifyCn?: boolean;
  encryption?: { enabled: boolean; method?: string; keyId?: string };
}

export function readMeta(file: string): ClusterMeta | undefined {
  if (!fs.existsSync(file)) return undefined;
  return JSON.parse(fs.readFileSync(file, 'utf8')) as ClusterMeta;
}

export function writeMeta(file: string, meta: ClusterMeta): void {
  writeFileAtomic(file, JSON.stringify(meta, null, 2) + '\n', 0o600);
}
