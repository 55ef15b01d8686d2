import { TisealError } from '../errors';

/** Verbs whose implementation has not landed yet fail loudly instead of pretending. */
export function unavailable(verb: string, issue: number) {
  return async (): Promise<number> => {
    throw new TisealError(`\`tiseal ${verb}\` is not implemented in this version yet (tracked in issue #${issue})`, {
      suggestion: 'see README.md "Status" for what works today',
    });
  };
}
