/**
 * Local certificate state: `<state-dir>/clusters/<name>/tls/`.
 *
 *   ca.crt        CA certificate followed by its chain (the bundle hosts get as ca.crt)   0644
 *   ca.key        CA private key — the only place it is ever written                       0600
 *   client.crt    tiseal's own client certificate (to talk to PD/TiKV/… over mTLS)        0644
 *   client.key    its key                                                                  0600
 *   <id>.crt      the certificate last issued to instance <id> (instanceCertId: tikv-20160@10.0.1.1), cert ONLY
 *
 * Instance keys are not kept here: they are generated in memory, pushed to their host and
 * forgotten. The certificates are kept so expiry, SANs and fingerprints can be reported and
 * compared with what a host serves without a round trip, and so rotation knows what it replaces.
 * Directories are 0700; every file is written atomically with its final mode.
 */
import fs from 'fs';
import path from 'path';
import { CertError } from '../errors';
import { certPem, pemCertificates } from './der';
import { CA_CERT_FILE, CA_KEY_FILE, CertificateAuthority, CreateCAOptions, LoadCAOptions, createCA, exportCAKeyForStore, loadCA } from './ca';
import { certMatchesKey } from './inspect';
import { writeFileAtomic } from './atomic-write';
import { ensureStateDirs } from '../state/private-dir';

export const CLIENT_CERT_FILE = 'client.crt';
export const CLIENT_KEY_FILE = 'client.key';
const KEY_MODE = 0o600;
const CERT_MODE = 0o644;
const RESERVED_IDS = new Set(['ca', 'client']);
const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;

export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

function checkName(kind: string, value: string): string {
  if (!SAFE_NAME.test(value) || value.length > 200) {
    throw new CertError(`invalid ${kind} '${value}'`, { suggestion: `a ${kind} may contain letters, digits and . _ : @ - and must not start with a dot` });
  }
  return value;
}

export class CertStore {
  readonly stateDir: string;
  readonly cluster: string;
  /** `<state-dir>/clusters/<cluster>/tls` */
  readonly dir: string;

  /** `subdir`: 'tls' for the cluster's CA; 'tls-next' holds the CA a `tls rotate --ca` moves to. */
  readonly subdir: string;

  constructor(stateDir: string, cluster: string, subdir = 'tls') {
    this.stateDir = path.resolve(stateDir);
    this.cluster = checkName('cluster name', cluster);
    this.subdir = checkName('store directory', subdir);
    this.dir = path.join(this.stateDir, 'clusters', cluster, this.subdir);
  }

  get caCertPath(): string { return path.join(this.dir, CA_CERT_FILE); }
  get caKeyPath(): string { return path.join(this.dir, CA_KEY_FILE); }
  get clientCertPath(): string { return path.join(this.dir, CLIENT_CERT_FILE); }
  get clientKeyPath(): string { return path.join(this.dir, CLIENT_KEY_FILE); }

  leafCertPath(instanceId: string): string {
    checkName('instance id', instanceId);
    if (RESERVED_IDS.has(instanceId)) throw new CertError(`instance id '${instanceId}' is reserved in the certificate store`);
    return path.join(this.dir, `${instanceId}.crt`);
  }

  /** Create the levels down to tls/ (0700 when tiseal creates them; an existing state dir keeps its mode). */
  async init(): Promise<void> {
    ensureStateDirs(this.stateDir, ['clusters', this.cluster, this.subdir]);
  }

  /** True when any part of a CA is on disk (a lone ca.key still blocks creating a new CA). */
  hasCA(): boolean {
    return fs.existsSync(this.caCertPath) || fs.existsSync(this.caKeyPath);
  }

  /**
   * Write ca.key then ca.crt. Without `overwrite` an existing CA is never replaced (also not by a
   * concurrent writer: the files are linked into place, which fails if they exist).
   */
  async saveCA(ca: CertificateAuthority, opts: { overwrite?: boolean } = {}): Promise<void> {
    await this.init();
    const overwrite = opts.overwrite === true;
    if (!overwrite && this.hasCA()) {
      throw new CertError(`a CA already exists in ${this.dir}`, { suggestion: 'keep using it, or ask explicitly to replace it (rotation); replacing it breaks trust with every certificate it issued' });
    }
    try {
      await writeFileAtomic(this.caKeyPath, exportCAKeyForStore(ca), { mode: KEY_MODE, overwrite });
      await writeFileAtomic(this.caCertPath, ca.bundlePem, { mode: CERT_MODE, overwrite });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new CertError(`a CA appeared in ${this.dir} while writing ours`, { suggestion: 'another tiseal run is working on this cluster; run again when it is done', cause: e });
      }
      throw e;
    }
  }

  loadCA(opts: LoadCAOptions = {}): CertificateAuthority {
    return loadCA(this.dir, opts);
  }

  /** tiseal's own client certificate and key (the key is written first, 0600). */
  async saveClient(pair: KeyPairPem): Promise<void> {
    if (!certMatchesKey(pair.certPem, pair.keyPem)) throw new CertError('client certificate and key do not match');
    await this.init();
    await writeFileAtomic(this.clientKeyPath, pair.keyPem, { mode: KEY_MODE });
    await writeFileAtomic(this.clientCertPath, onlyCertificates(pair.certPem), { mode: CERT_MODE });
  }

  loadClient(): KeyPairPem | null {
    if (!fs.existsSync(this.clientCertPath) || !fs.existsSync(this.clientKeyPath)) return null;
    return { certPem: fs.readFileSync(this.clientCertPath, 'utf8'), keyPem: fs.readFileSync(this.clientKeyPath, 'utf8') };
  }

  /** Keep the certificate issued to an instance. Only certificates are written, whatever the input holds. */
  async saveLeafCert(instanceId: string, pem: string): Promise<void> {
    const file = this.leafCertPath(instanceId);
    await this.init();
    await writeFileAtomic(file, onlyCertificates(pem), { mode: CERT_MODE });
  }

  loadLeafCert(instanceId: string): string | null {
    const file = this.leafCertPath(instanceId);
    return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : null;
  }

  /** Instance ids with a kept certificate, sorted. */
  listLeafCerts(): string[] {
    if (!fs.existsSync(this.dir)) return [];
    return fs
      .readdirSync(this.dir)
      .filter((f) => f.endsWith('.crt') && !f.startsWith('.'))
      .map((f) => f.slice(0, -4))
      .filter((id) => !RESERVED_IDS.has(id))
      .sort();
  }

  async removeLeafCert(instanceId: string): Promise<void> {
    await fs.promises.rm(this.leafCertPath(instanceId), { force: true });
  }
}

/**
 * Store id for an instance's certificate. Topology ids (`tikv-20160`) are unique per host only,
 * so the host is part of it: `tikv-20160@10.0.1.1`.
 */
export function instanceCertId(inst: { id: string; host: string }): string {
  return checkName('instance id', `${inst.id}@${inst.host.replace(/^\[|\]$/g, '')}`);
}

/** Re-encode just the CERTIFICATE blocks, so nothing else (a key pasted alongside) can slip into a .crt. */
function onlyCertificates(pem: string): string {
  const ders = pemCertificates(pem);
  if (ders.length === 0) throw new CertError('no PEM certificate to store');
  return ders.map(certPem).join('');
}

/** The cluster's CA: load it when the store has one, otherwise create it and save it. Never replaces one. */
export async function loadOrCreateCA(
  store: CertStore,
  opts: CreateCAOptions & LoadCAOptions = {},
): Promise<{ ca: CertificateAuthority; created: boolean }> {
  if (store.hasCA()) return { ca: store.loadCA(opts), created: false };
  const ca = await createCA({ cluster: store.cluster, ...opts });
  await store.saveCA(ca);
  return { ca, created: true };
}
