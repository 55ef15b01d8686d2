import type { Step } from '../engine/step';
import { CertStore } from '../pki';
import { certificatesStep } from '../tasks/certs/issue';
import { purgeKeyBackupsStep } from '../tasks/certs/key-backups';
import { clearEvictionsStep } from '../tasks/restart/evict-leaders';
import { forceLeftoversStep } from '../tasks/pd/force-once';
import type { TlsContext } from '../tasks/context';
import { reissueStep, RotateState, verifyServedStep } from '../tasks/certs/rotate';
import { tiupMetaStep } from '../tiup/step';
import { CaRotation, nextCaStep, promoteStep, reissueFromNewCaStep, trustBothSteps, trustNewOnlySteps } from '../tasks/certs/rotate-ca';

/** `tls rotate`: new leaves from the same CA, pushed in place, picked up without restarts. */
export function rotateSteps(): { steps: Step<TlsContext>[]; state: RotateState } {
  const state: RotateState = { pushed: new Map() };
  return { state, steps: [forceLeftoversStep, clearEvictionsStep, certificatesStep, reissueStep(state), verifyServedStep(state), purgeKeyBackupsStep] };
}

/** `tls rotate --ca`: trust both, reissue from the new CA, trust only the new one, promote it, then TiUP's tls/ follows (its scale-out issues from that CA). */
export function rotateCaSteps(stateDir: string, cluster: string): { steps: Step<TlsContext>[]; state: RotateState; rotation: CaRotation } {
  const state: RotateState = { pushed: new Map() };
  const rotation: CaRotation = { current: new CertStore(stateDir, cluster), next: new CertStore(stateDir, cluster, 'tls-next') };
  return {
    state,
    rotation,
    steps: [forceLeftoversStep, clearEvictionsStep, nextCaStep(rotation), ...trustBothSteps(rotation), reissueFromNewCaStep(rotation, state), verifyServedStep(state), ...trustNewOnlySteps(rotation), promoteStep(rotation), tiupMetaStep, purgeKeyBackupsStep],
  };
}
