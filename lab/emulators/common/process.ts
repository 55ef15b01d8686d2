import type { Logger } from './log';

/** Graceful stop on SIGTERM/SIGINT (systemd stop): run the cleanups, then exit 0 like the real servers. */
export function onShutdown(log: Logger, cleanup: () => Promise<void> | void): void {
  let stopping = false;
  const handler = (sig: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log.info(`Got signal [${sig}] to exit.`);
    const force = setTimeout(() => process.exit(0), 8000);
    force.unref();
    Promise.resolve()
      .then(cleanup)
      .catch((e) => log.error('error during shutdown', { error: String(e) }))
      .finally(() => process.exit(0));
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** How long a component keeps retrying an unreachable PD at start before giving up (TiDB, TiCDC). */
export function bootTimeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const v = Number(env.TISEAL_EMULATOR_BOOT_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 60000;
}
