import { endRun } from '../../src/commands/cluster';

describe('endRun: the end of every changing verb', () => {
  let out: string[];
  let spy: jest.SpyInstance;
  beforeEach(() => {
    out = [];
    spy = jest.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
      out.push(String(s));
      return true;
    });
  });
  afterEach(() => spy.mockRestore());

  const hold = (events: string[], withPool = true) => ({
    keyPool: withPool ? { close: async () => void events.push('key pool closed') } : undefined,
    lock: { release: () => void events.push('lock released') },
    close: async () => void events.push('ssh closed'),
  });

  it("prints a finished run's notes, then stops the key pool, releases the lock, closes SSH", async () => {
    const events: string[] = [];
    spy.mockImplementation((s: string | Uint8Array) => (events.push(`stdout ${String(s)}`), true));
    await endRun(hold(events), ['a', 'b']);
    expect(events).toEqual(['stdout note: a\n', 'stdout note: b\n', 'key pool closed', 'lock released', 'ssh closed']);
  });

  it('prints nothing for a run that did not go through; cleans up without a key pool too', async () => {
    const events: string[] = [];
    await endRun(hold(events, false));
    expect(out).toEqual([]);
    expect(events).toEqual(['lock released', 'ssh closed']);
  });
});
