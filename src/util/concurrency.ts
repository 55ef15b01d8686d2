/**
 * Hosts worked on at once when `-c` is not given. A change stays narrow, so a bad change reaches
 * few hosts before it is noticed; reading changes nothing and goes wider: read-only verbs (tls
 * status, audit, sql-tls status) and, in changing verbs, preflight's facts and every step's decide
 * (what a dry run shows; the actions it decides run CHANGE_CONCURRENCY wide): each host costs the control machine one SSH handshake of CPU and
 * a socket, and a host's sshd sees one connection from tiseal whatever the width (its
 * MaxStartups 10:30:100 counts connections per sshd). The width was chosen from `npm run bench`'s
 * sweep (bench/README.md).
 */
export const CHANGE_CONCURRENCY = 5;
export const READ_CONCURRENCY = 32;

/** Width of a read-only verb: `-c` when given, else READ_CONCURRENCY. */
export const readConcurrency = (opts: { readConcurrency?: number }) => opts.readConcurrency ?? READ_CONCURRENCY;

/** Run `fn` over items with at most `limit` in flight; rejects with the first error after all settle. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  const errors: unknown[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i], i);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (errors.length > 0) throw errors[0];
  return results;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Poll delays that start short and grow to `maxMs`: a restarted component is usually back
 * within a second, and every poll interval it is not looked at is added to the outage.
 */
export function backoffDelays(firstMs = 100, maxMs = 1000, factor = 1.5): () => number {
  let next = firstMs;
  return () => {
    const d = next;
    next = Math.min(maxMs, Math.round(next * factor));
    return d;
  };
}

/** Poll `check` until it returns a truthy value or `timeoutMs` passes; the last error/value explains the timeout. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false | null>, opts: { timeoutMs: number; intervalMs?: number; fatal?: (e: unknown) => boolean }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (e) {
      if (opts.fatal?.(e)) throw e;
      last = e;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? last.message : last === undefined ? 'no answer' : JSON.stringify(last);
      throw new Error(`timed out after ${Math.round(opts.timeoutMs / 1000)}s waiting for ${what} (last: ${why})`);
    }
    await sleep(opts.intervalMs ?? 500);
  }
}
