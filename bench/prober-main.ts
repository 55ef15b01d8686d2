/**
 * The child side of a prober run as its own process (sql-prober.ts, sql-tick-prober.ts): JSON lines
 * on stdout, stop on SIGTERM or SIGINT, a failure as one stderr line naming the prober and exit 1.
 * Imports nothing, so the unit tests transpile it beside the probers (test/support/bench-scripts.ts).
 */

/** One JSON object per line on stdout: what the parent (prober-child.ts) reads. */
export const emitLine = (o: unknown): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);

/** Resolves on the first SIGTERM or SIGINT: the parent's stop. */
export const stopSignal = (): Promise<void> =>
  new Promise((r) => {
    process.once('SIGTERM', () => r());
    process.once('SIGINT', () => r());
  });

/** Runs the prober's main; a failure becomes one line on stderr, prefixed with `name:` once. */
export function runProberMain(name: string, main: () => Promise<void>): void {
  main().catch((e) => {
    const msg = (e as Error).message;
    process.stderr.write(`${msg.startsWith(`${name}:`) ? msg : `${name}: ${msg}`}\n`);
    process.exit(1);
  });
}
