/**
 * Tests that need the machine (root, sshd, the lab, tmux) skip with a printed reason where it cannot
 * give them, except under TISEAL_REQUIRE_LAB=1 (set by .ci/run): there a skip would let CI pass
 * with no coverage, so the suite or test becomes one failure that says why.
 */

export const skipForbidden = (): boolean => process.env.TISEAL_REQUIRE_LAB === '1';

const failure = (reason: string): Error => new Error(`cannot run here: ${reason} (TISEAL_REQUIRE_LAB=1: a skipped test is a failure)`);

const noticed = new Set<string>();
function notice(reason: string): void {
  if (noticed.has(reason)) return;
  noticed.add(reason);
  // eslint-disable-next-line no-console
  console.warn(`skipped: ${reason}`);
}

/** `describe`, or its skip (reason printed) when `reason` is set, or one failing test under TISEAL_REQUIRE_LAB=1. */
export function describeUnless(reason: string | undefined): (name: string, fn: () => void) => void {
  return (name, fn) => {
    if (!reason) return describe(name, fn);
    if (skipForbidden()) {
      return describe(name, () => {
        test('has what it needs to run', () => {
          throw failure(reason);
        });
      });
    }
    notice(reason);
    return describe.skip(name, fn);
  };
}

/** The same for one test. */
export function testUnless(reason: string | undefined): (name: string, fn: jest.ProvidesCallback, timeoutMs?: number) => void {
  return (name, fn, timeoutMs) => {
    if (!reason) return test(name, fn, timeoutMs);
    if (skipForbidden()) {
      return test(name, () => {
        throw failure(reason);
      });
    }
    notice(reason);
    return test.skip(name, fn, timeoutMs);
  };
}
