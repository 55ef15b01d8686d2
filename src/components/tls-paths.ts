import * as path from 'path';
import type { Instance } from '../topology/types';

/** Where TiUP keeps an instance's TLS files: <deploy_dir>/tls/{ca.crt,<name>.crt,<name>.pem}. */
export interface TlsPaths {
  dir: string;
  ca: string;
  cert: string;
  key: string;
}

export function tlsPaths(inst: Instance): TlsPaths {
  const dir = path.posix.join(inst.deployDir, 'tls');
  return {
    dir,
    ca: path.posix.join(dir, 'ca.crt'),
    cert: path.posix.join(dir, `${inst.certName}.crt`),
    key: path.posix.join(dir, `${inst.certName}.pem`),
  };
}
