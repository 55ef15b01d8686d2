import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { unifiedDiff } from '../../src/util/diff';

/** The diff must be a real unified diff: `patch` applies it and gets the new text back. */
function roundTrip(oldText: string, newText: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-diff-'));
  try {
    const f = path.join(dir, 'f.toml');
    fs.writeFileSync(f, oldText);
    fs.writeFileSync(path.join(dir, 'p.diff'), unifiedDiff(oldText, newText, 'f.toml'));
    execFileSync('patch', ['-s', f, path.join(dir, 'p.diff')]);
    return fs.readFileSync(f, 'utf8');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('unifiedDiff', () => {
  it('is empty for equal texts', () => {
    expect(unifiedDiff('a\n', 'a\n', 'x')).toBe('');
  });
  it('shows added security keys with context', () => {
    const d = unifiedDiff('[log]\nlevel = "info"\n', '[log]\nlevel = "info"\n\n[security]\nca-path = "/a"\n', 'tikv.toml');
    expect(d).toContain('--- tikv.toml');
    expect(d).toContain('+[security]');
    expect(d).toContain('+ca-path = "/a"');
    expect(d).toContain(' level = "info"');
  });
  const cases: Array<[string, string, string]> = [
    ['append', 'a\nb\nc\n', 'a\nb\nc\nd\n'],
    ['prepend', 'a\nb\n', 'z\na\nb\n'],
    ['replace middle', Array.from({ length: 30 }, (_, i) => `l${i}`).join('\n') + '\n', Array.from({ length: 30 }, (_, i) => (i === 15 ? 'X' : `l${i}`)).join('\n') + '\n'],
    ['two distant hunks', Array.from({ length: 40 }, (_, i) => `l${i}`).join('\n') + '\n', Array.from({ length: 40 }, (_, i) => (i === 2 || i === 35 ? `m${i}` : `l${i}`)).join('\n') + '\n'],
    ['from empty', '', 'x\ny\n'],
    ['to empty', 'x\ny\n', ''],
    ['delete all but one', 'a\nb\nc\nd\n', 'c\n'],
  ];
  it.each(cases)('round-trips through patch(1): %s', (_name, a, b) => {
    expect(roundTrip(a, b)).toBe(b);
  });
});
