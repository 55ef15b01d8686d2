/**
 * Which master key a store's encryption is really using, from the state the emulator keeps on the
 * host (lab/emulators/tikv/encryption.ts): `<data-dir>/key.dict` holds a marker sealed with
 * AES-256-GCM under the master key that last opened it. Decrypted here with node's crypto, so
 * "the new key is in use" is a fact about the store's files, not a log line.
 */
import { createDecipheriv } from 'crypto';
import type { LabInfo } from '../../lab';
import { sshOk } from './helpers';

export interface KeyDict {
  method: string;
  iv?: string;
  tag?: string;
  content?: string;
  data_method: string;
}

/** The key dictionary of the store whose data lives under `dataDir` on `host` (TiFlash keeps it below `<data>/flash`). */
export function readKeyDict(info: LabInfo, host: string, dataDir: string): KeyDict {
  const file = sshOk(info, host, `sudo -n find ${dataDir} -maxdepth 2 -name key.dict`).trim().split('\n')[0];
  if (!file) throw new Error(`${host}: no key.dict under ${dataDir}`);
  return JSON.parse(sshOk(info, host, `sudo -n cat ${file}`)) as KeyDict;
}

/** Does `masterKeyHex` (the 64 hex characters of a master key file) open the dictionary? */
export function sealedBy(dict: KeyDict, masterKeyHex: string): boolean {
  if (dict.method !== 'aes256-gcm') return false;
  try {
    const d = createDecipheriv('aes-256-gcm', Buffer.from(masterKeyHex.trim(), 'hex'), Buffer.from(dict.iv!, 'base64'));
    d.setAuthTag(Buffer.from(dict.tag!, 'base64'));
    // The marker, then (since the emulator holds regions) the 32-byte data key sealed with it.
    return Buffer.concat([d.update(Buffer.from(dict.content!, 'base64')), d.final()]).subarray(0, 30).toString() === 'tiseal-emulator-key-dictionary';
  } catch {
    return false;
  }
}
