/**
 * Per-call capture of what code writes to process.stdout / process.stderr.
 *
 * A global spy (jest.spyOn(process.stdout, 'write')) collects whatever anything writes while it is
 * installed: a test that timed out keeps running, and its late lines land in the next test's
 * capture (a neighbour's JSON no longer parses). Here the streams' write is routed once per worker
 * through an AsyncLocalStorage: a write lands in the capture of the call it descends from (promises,
 * timers, sockets made inside it), and anything written outside every capture goes to the stream.
 */
import { AsyncLocalStorage } from 'async_hooks';

export interface Captured {
  out: string;
  err: string;
}

// On the stream itself: every test file's module registry sees the same stream objects (and must
// share one router, or a second file would wrap the first file's router).
const ROUTER = Symbol.for('tiseal.test.output-capture');
type Routed = NodeJS.WriteStream & { [ROUTER]?: AsyncLocalStorage<Captured> };

function router(): AsyncLocalStorage<Captured> {
  const stdout = process.stdout as Routed;
  const existing = stdout[ROUTER];
  if (existing) return existing;
  const als = new AsyncLocalStorage<Captured>();
  for (const [stream, field] of [[process.stdout, 'out'], [process.stderr, 'err']] as const) {
    const write = stream.write;
    stream.write = function routedWrite(this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      const sink = als.getStore();
      if (!sink) return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
      sink[field] += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      const cb = rest.find((a): a is () => void => typeof a === 'function');
      if (cb) process.nextTick(cb);
      return true;
    } as typeof stream.write;
  }
  stdout[ROUTER] = als;
  return als;
}

/** Run `fn` with what it (and anything it starts) writes to stdout and stderr captured. */
export async function captureOutput<T>(fn: () => Promise<T> | T): Promise<Captured & { value: T }> {
  const sink: Captured = { out: '', err: '' };
  const value = await router().run(sink, async () => fn());
  return { ...sink, value };
}
