import type { Step } from '../engine/step';
import type { TlsContext } from '../tasks/context';
import { certificatesStep } from '../tasks/certs/issue';
import { peerUrlsStep } from '../tasks/pd/peer-urls';
import { recordStep } from '../tasks/record';
import { restartTierSteps, stopAllStep } from '../tasks/restart/schedules';
import { overlapRestartStep } from '../tasks/restart/overlap';
import { savePdStep, scaleInStep } from '../tasks/pd/scale-in';
import { scaleOutStep } from '../tasks/pd/scale-out';
import { HostResumeContext, startPdStep } from '../tasks/pd/start';
import { stageStep } from '../tasks/certs/stage';
import { cleanCertificatesStep } from '../tasks/certs/clean';
import { purgeKeyBackupsStep } from '../tasks/certs/key-backups';
import { tiupMetaStep } from '../tiup/step';
import { closePdMarksStep } from '../tasks/pd/traces';
import { clearEvictionsStep } from '../tasks/restart/evict-leaders';
import { forceLeftoversStep } from '../tasks/pd/force-once';

/**
 * The TLS switch, either way, after preflight and confirmation. Enable and disable walk the same
 * path; only the wanted state differs, which is what makes disable the rollback of any partial
 * enable: every step converges from whatever it finds.
 */
export function tlsSteps(ctx: TlsContext): Step<TlsContext>[] {
  const steps: Step<TlsContext>[] = [
    // First: a forced PD left running by a killed recovery is the kept PD's stand-in.
    forceLeftoversStep,
    // Only when preflight found every PD stopped by a killed run (read from the hosts).
    ...((ctx as HostResumeContext).pdsToStart?.length ? [startPdStep as Step<TlsContext>] : []),
    savePdStep,
    scaleInStep,
    certificatesStep,
    stageStep,
    ...(ctx.flags.schedule === 'stop-all' ? [stopAllStep(ctx)] : []),
    ...(ctx.flags.schedule === 'overlap' || ctx.flags.schedule === undefined ? [overlapRestartStep()] : []),
    ...restartTierSteps(ctx),
    peerUrlsStep,
    scaleOutStep,
    closePdMarksStep,
    // Left by a killed encrypt or rotate --ca; here, not first: PD may not answer before the switch resumes.
    clearEvictionsStep,
  ];
  if (ctx.want === 'off' && ctx.flags.cleanCertificate) steps.push(cleanCertificatesStep);
  steps.push(recordStep, tiupMetaStep, purgeKeyBackupsStep);
  return steps;
}
