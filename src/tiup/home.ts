/**
 * Where TiUP keeps a cluster on the control machine: `$TIUP_HOME/storage/cluster/clusters/<name>/`
 * (TIUP_HOME defaults to ~/.tiup). Layout as pingcap/tiup writes it: pkg/cluster/spec SpecManager
 * (`meta.yaml`, `backup/`) and pkg/cluster/manager/cacert.go (`tls/ca.crt`, `tls/ca.pem` = CA key,
 * `tls/client.crt`, `tls/client.pem`, `tls/client.pfx`).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export function tiupHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.TIUP_HOME;
  return path.resolve(home && home.trim() ? home : path.join(os.homedir(), '.tiup'));
}

export class TiupCluster {
  readonly dir: string;
  constructor(readonly home: string, readonly name: string) {
    this.dir = path.join(home, 'storage', 'cluster', 'clusters', name);
  }
  get metaFile(): string {
    return path.join(this.dir, 'meta.yaml');
  }
  /** SpecManager.SaveMeta keeps its meta.yaml backups here. */
  get backupDir(): string {
    return path.join(this.dir, 'backup');
  }
  get tlsDir(): string {
    return path.join(this.dir, 'tls');
  }
  get caCert(): string {
    return path.join(this.tlsDir, 'ca.crt');
  }
  get caKey(): string {
    return path.join(this.tlsDir, 'ca.pem');
  }
  get clientCert(): string {
    return path.join(this.tlsDir, 'client.crt');
  }
  get clientKey(): string {
    return path.join(this.tlsDir, 'client.pem');
  }
}

/** The TiUP cluster of that name when TiUP manages it here (its meta.yaml exists), else undefined. */
export function findTiupCluster(name: string, env: NodeJS.ProcessEnv = process.env): TiupCluster | undefined {
  const c = new TiupCluster(tiupHome(env), name);
  return fs.statSync(c.metaFile, { throwIfNoEntry: false })?.isFile() ? c : undefined;
}
