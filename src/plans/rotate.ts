import type { Step } from '../engine/step';
import { certificatesStep } from '../tasks/certificates';
import type { TlsContext } from '../tasks/context';
import { reissueStep, RotateState, verifyServedStep } from '../tasks/rotate';

/** `tls rotate`: new leaves from the same CA, pushed in place, picked up without restarts. */
export function rotateSteps(): { steps: Step<TlsContext>[]; state: RotateState } {
  const state: RotateState = { pushed: new Map() };
  return { state, steps: [certificatesStep, reissueStep(state), verifyServedStep(state)] };
}
