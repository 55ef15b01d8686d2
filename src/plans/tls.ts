import type { Step } from '../engine/step';
import type { TlsContext } from '../tasks/context';
import { certificatesStep } from '../tasks/certificates';
import { peerUrlsStep } from '../tasks/peer-urls';
import { recordStep } from '../tasks/record';
import { restartTierSteps, stopAllStep } from '../tasks/restart';
import { savePdStep, scaleInStep } from '../tasks/scale-in';
import { scaleOutStep } from '../tasks/scale-out';
import { stageStep } from '../tasks/stage';
import { cleanCertificatesStep } from '../tasks/clean-certificates';

/**
 * The TLS switch, either way, after preflight and confirmation. Enable and disable walk the same
 * path; only the wanted state differs, which is what makes disable the rollback of any partial
 * enable: every step converges from whatever it finds.
 */
export function tlsSteps(ctx: TlsContext): Step<TlsContext>[] {
  const steps: Step<TlsContext>[] = [
    savePdStep,
    scaleInStep,
    certificatesStep,
    stageStep,
    ...(ctx.flags.schedule === 'stop-all' ? [stopAllStep(ctx)] : []),
    ...restartTierSteps(ctx),
    peerUrlsStep,
    scaleOutStep,
  ];
  if (ctx.want === 'off' && ctx.flags.cleanCertificate) steps.push(cleanCertificatesStep);
  steps.push(recordStep);
  return steps;
}
