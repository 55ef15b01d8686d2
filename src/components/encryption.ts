import type { Instance } from '../topology/types';
import type { TomlTable } from './security-keys';

/** TiKV's data-encryption methods (sm4-ctr from v6.3.0). */
export const METHODS = ['aes128-ctr', 'aes192-ctr', 'aes256-ctr', 'sm4-ctr'] as const;
export type Method = (typeof METHODS)[number] | 'plaintext';

/** Encryption at rest lives in tikv.toml and, for TiFlash, in the learner (proxy) config. */
export function encryptionConfigFile(inst: Instance): string | undefined {
  if (inst.role === 'tikv') return inst.configFiles.find((f) => f.endsWith('/tikv.toml'));
  if (inst.role === 'tiflash') return inst.configFiles.find((f) => f.endsWith('/tiflash-learner.toml'));
  return undefined;
}

export const keyDir = (inst: Instance) => `${inst.deployDir}/encryption`;
export const masterKeyPath = (inst: Instance) => `${keyDir(inst)}/master.key`;
export const previousKeyPath = (inst: Instance) => `${keyDir(inst)}/previous.key`;

/** A v4+ master key file: exactly 64 hex characters and a newline (256 bits). */
export function isMasterKey(text: string): boolean {
  return /^[0-9a-fA-F]{64}\n$/.test(text);
}

export interface EncryptionSettings {
  method: Method;
  masterKey: string; // path on the host
  previousMasterKey?: string;
}

/** Set `[security.encryption]` (and its master keys) in a parsed config. Returns true when it changed. */
export function applyEncryption(doc: TomlTable, s: EncryptionSettings): boolean {
  const before = JSON.stringify(doc);
  const security = (doc.security ??= {}) as TomlTable;
  const enc = (security.encryption ??= {}) as TomlTable;
  enc['data-encryption-method'] = s.method;
  enc['master-key'] = { type: 'file', path: s.masterKey };
  if (s.previousMasterKey) enc['previous-master-key'] = { type: 'file', path: s.previousMasterKey };
  else delete enc['previous-master-key'];
  return JSON.stringify(doc) !== before;
}

export function readEncryption(doc: TomlTable): { method: string; masterKey?: string; previousMasterKey?: string } {
  const enc = ((doc.security as TomlTable | undefined)?.encryption ?? {}) as TomlTable;
  const path = (k: string) => ((enc[k] as TomlTable | undefined)?.type === 'file' ? String((enc[k] as TomlTable).path ?? '') : undefined);
  return { method: String(enc['data-encryption-method'] ?? 'plaintext'), masterKey: path('master-key'), previousMasterKey: path('previous-master-key') };
}
