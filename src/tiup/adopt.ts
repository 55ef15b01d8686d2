/**
 * A cluster TiUP put on TLS (`tiup cluster tls <name> enable`, or deployed with enable_tls) already
 * has a CA: TiUP's `tls/ca.crt` + `tls/ca.pem`. tiseal adopts it as a bring-your-own CA instead of
 * making a second one: imported into `<state-dir>/clusters/<name>/tls/` (ca.key 0600; the key
 * never goes to a host), with tiseal's own client certificate (CN tiseal) issued from it.
 * With --dry-run nothing is written: the CA and a client certificate are held in memory.
 */
import * as fs from 'fs';
import { CertError, localIoError } from '../errors';
import type { GlobalOptions } from '../options';
import { CertificateAuthority, CertStore, importCA, issueLeaf, KeyPairPem } from '../pki';
import type { ClientTls } from '../util/http';
import { findTiupCluster, TiupCluster } from './home';
import { readEnableTls } from './meta-yaml';

export interface TiupTls {
  tiup: TiupCluster;
  ca: CertificateAuthority;
}

const read = (file: string) => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw localIoError(e, file, 'read', 'check TIUP_HOME, or pass --no-tiup-meta to ignore TiUP\'s metadata');
  }
};

/** TiUP's CA when its meta.yaml records enable_tls and its tls/ holds ca.crt and ca.pem; else undefined. */
export function tiupTlsCa(clusterName: string, opts: Pick<GlobalOptions, 'tiupMeta'>): TiupTls | undefined {
  if (!opts.tiupMeta) return undefined;
  const tiup = findTiupCluster(clusterName);
  if (!tiup || !readEnableTls(read(tiup.metaFile), tiup.metaFile)) return undefined;
  if (!fs.existsSync(tiup.caCert) || !fs.existsSync(tiup.caKey)) return undefined;
  try {
    return { tiup, ca: importCA({ certPem: read(tiup.caCert), keyPem: read(tiup.caKey) }) };
  } catch (e) {
    if (!(e instanceof CertError)) throw e;
    throw new CertError(`TiUP's CA ${tiup.caCert} (key ${tiup.caKey}): ${e.message}`, { suggestion: e.suggestion ?? 'pass --no-tiup-meta to ignore TiUP\'s CA', cause: e });
  }
}

export interface Adopted {
  tiup: TiupTls;
  /** tiseal's client material under TiUP's CA (written to the store unless dry-run). */
  clientTls: ClientTls;
  note: string;
}

/** `${ca.info.subjectCN}` is empty for TiUP's CA (O=PingCAP, OU=TiUP, no CN: pkg/crypto/ca.go). */
export const caName = (ca: CertificateAuthority) => ca.info.subjectCN || `TiUP CA ${ca.info.fingerprintSha256.slice(0, 23)}`;

/**
 * Adopt TiUP's CA into an empty store. Undefined when there is nothing to adopt or the store
 * already holds that CA; a store holding another CA is an error (two CAs cannot both be the cluster's).
 */
export async function adoptTiupCa(store: CertStore, opts: Pick<GlobalOptions, 'tiupMeta' | 'dryRun'>): Promise<Adopted | undefined> {
  const found = tiupTlsCa(store.cluster, opts);
  if (!found) return undefined;
  if (store.hasCA()) {
    const own = store.loadCA({ allowExpired: true });
    if (own.info.fingerprintSha256 === found.ca.info.fingerprintSha256) return undefined;
    throw new CertError(`TiUP's metadata (${found.tiup.metaFile}) says the cluster is on TLS with the CA ${found.tiup.caCert}, but ${store.dir} holds a different CA (${caName(own)})`, {
      suggestion: `find which CA the cluster serves (openssl s_client -connect <pd>:2379 -CAfile ${found.tiup.caCert}); move the wrong one aside, or pass --no-tiup-meta to keep tiseal's`,
    });
  }
  const ca = found.ca;
  const keyType = ca.info.keyAlgorithm === 'ec' ? 'ecdsa' : 'rsa';
  const issued = await issueLeaf(ca, { commonName: 'tiseal', usage: 'client', keyType });
  const client: KeyPairPem = { certPem: issued.certPem, keyPem: issued.keyPem };
  if (!opts.dryRun) {
    await store.saveCA(ca);
    await store.saveClient(client);
  }
  return {
    tiup: found,
    clientTls: { ca: ca.bundlePem, cert: client.certPem, key: client.keyPem },
    note: `${opts.dryRun ? 'would adopt' : 'adopted'} TiUP's CA ${found.tiup.caCert} (the cluster is on TLS per ${found.tiup.metaFile})${opts.dryRun ? '' : ` into ${store.dir} (key 0600)`}; no second CA is made`,
  };
}
