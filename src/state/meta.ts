import * as fs from 'fs';
import { LocalStateError, localIoError } from '../errors';
import { writeFileAtomic } from './files';

/** What tiseal last verified about a cluster (`meta.json`), written only after verification. */
export interface ClusterMeta {
  enableTls: boolean;
  verifiedAt?: string;
  verifyCn?: boolean;
  encryption?: { enabled: boolean; method?: string; keyId?: string };
}

export function readMeta(file: string): ClusterMeta | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw localIoError(e, file, 'read');
  }
  const bad = (why: string) =>
    new LocalStateError(`${file} ${why}`, {
      suggestion: `it only records what tiseal last verified; move it aside (mv ${file} ${file}.bad) and re-run: tiseal reads the cluster's state from the hosts`,
    });
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw bad(`is not valid JSON (${(e as Error).message}); it may have been cut short`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw bad('does not hold a JSON object');
  return v as ClusterMeta;
}

export function writeMeta(file: string, meta: ClusterMeta): void {
  try {
    writeFileAtomic(file, JSON.stringify(meta, null, 2) + '\n', 0o600);
  } catch (e) {
    throw localIoError(e, file, 'write');
  }
}
