/**
 * PKI for tiseal: the cluster CA, component/client certificates, inspection, and the local store.
 * The CA private key is reachable only through CertStore (which writes it 0600); nothing exported
 * here returns it.
 */
export type { KeyType, KeyGen, GeneratedKey, KeySource } from './keys';
export { KEY_TYPES, RSA_BITS, generateKeyPair, exportKeyPem, keyTypeOf } from './keys';
export type { KeyPoolOptions, KeyPoolStats } from './key-pool';
export { RsaKeyPool } from './key-pool';
export type { CreateCAOptions, ImportCAOptions, LoadCAOptions } from './ca';
export { CertificateAuthority, createCA, importCA, loadCA, DEFAULT_CA_DAYS, BACKDATE_MS, CA_CERT_FILE, CA_KEY_FILE } from './ca';
export type { LeafOptions, LeafUsage, IssuedCert } from './leaf';
export { issueLeaf, DEFAULT_LEAF_DAYS, LOCAL_SANS } from './leaf';
export type { CertInfo, ChainResult } from './inspect';
export { parseCertificate, parseBundle, certMatchesKey, verifyChain } from './inspect';
export type { SanSet } from './san';
export { SanBuilder, normalizeIp, normalizeDns } from './san';
export type { KeyPairPem } from './store';
export { CertStore, loadOrCreateCA, instanceCertId, CLIENT_CERT_FILE, CLIENT_KEY_FILE } from './store';
export { writeFileAtomic, ensurePrivateDir } from './atomic-write';
