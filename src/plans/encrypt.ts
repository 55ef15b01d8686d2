import { masterKeyPath, Method, previousKeyPath } from '../components/encryption';
import type { Step } from '../engine/step';
import type { TlsContext } from '../tasks/context';
import { dropPreviousKeyStep, encryptionConfigStep, localKeys, localKeyStep, promoteKeyStep, pushKeysStep, recordEncryptionStep, rollingStoreRestartStep } from '../tasks/encrypt';
import * as fs from 'fs';
import { purgeKeyBackupsStep } from '../tasks/certs/key-backups';
import { clearEvictionsStep } from '../tasks/restart/evict-leaders';
import { forceLeftoversStep } from '../tasks/pd/force-once';

const keyText = (f: string) => fs.readFileSync(f, 'utf8');

/** enable (or change the method): key on hosts, config, rolling restart. */
export function encryptEnableSteps(method: Method, givenKey?: string): Step<TlsContext>[] {
  return [
    forceLeftoversStep,
    clearEvictionsStep,
    localKeyStep('current', givenKey),
    pushKeysStep('push-key', (ctx, inst) => [{ path: masterKeyPath(inst), content: keyText(localKeys(ctx).current) }]),
    encryptionConfigStep('config', (inst) => ({ method, masterKey: masterKeyPath(inst) })),
    rollingStoreRestartStep('restart'),
    recordEncryptionStep(method),
    purgeKeyBackupsStep,
  ];
}

/** disable: method plaintext; the master key stays configured so existing encrypted files stay readable. */
export function encryptDisableSteps(): Step<TlsContext>[] {
  return [
    forceLeftoversStep,
    clearEvictionsStep,
    pushKeysStep('push-key', (ctx, inst) => [{ path: masterKeyPath(inst), content: keyText(localKeys(ctx).current) }]),
    encryptionConfigStep('config', (inst) => ({ method: 'plaintext', masterKey: masterKeyPath(inst) })),
    rollingStoreRestartStep('restart'),
    recordEncryptionStep('plaintext'),
    purgeKeyBackupsStep,
  ];
}

/**
 * rotate-key: the new key becomes master-key and the old one previous-master-key, every store
 * restarts once (re-encrypting its data keys), then the old key is forgotten.
 */
export function encryptRotateSteps(method: Method, givenKey?: string): Step<TlsContext>[] {
  return [
    forceLeftoversStep,
    clearEvictionsStep,
    localKeyStep('next', givenKey),
    pushKeysStep('push-keys', (ctx, inst) => [
      { path: previousKeyPath(inst), content: keyText(localKeys(ctx).current) },
      { path: masterKeyPath(inst), content: keyText(localKeys(ctx).next) },
    ]),
    encryptionConfigStep('config', (inst) => ({ method, masterKey: masterKeyPath(inst), previousMasterKey: previousKeyPath(inst) })),
    rollingStoreRestartStep('restart'),
    dropPreviousKeyStep((inst) => ({ method, masterKey: masterKeyPath(inst) })),
    promoteKeyStep(),
    recordEncryptionStep(method),
    purgeKeyBackupsStep,
  ];
}
