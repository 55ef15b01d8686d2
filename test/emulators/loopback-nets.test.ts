/**
 * The emulator test files run in parallel, each on its own loopback /24 (`loopbackNet(__filename)`
 * with the third octet from LOOPBACK_NETS): two files on one number would have their emulators
 * answer each other (pd-join and regions once shared 7).
 */
import * as fs from 'fs';
import * as path from 'path';
import { LOOPBACK_NETS, loopbackNet, loopbackNetProblems, ROOT } from './helpers';

const TEST_DIR = path.join(ROOT, 'test');

function testSources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? testSources(path.join(dir, d.name)) : d.name.endsWith('.ts') ? [path.join(dir, d.name)] : [],
  );
}

describe('loopback nets of the emulator test files', () => {
  it('one number per file, each in 1..254', () => {
    expect(loopbackNetProblems(LOOPBACK_NETS)).toEqual([]);
  });

  it('a number given to two files is found', () => {
    expect(loopbackNetProblems({ 'emulators/a.test.ts': 7, 'emulators/b.test.ts': 7, 'emulators/c.test.ts': 0 })).toEqual([
      "emulators/b.test.ts: 7 is already emulators/a.test.ts's",
      'emulators/c.test.ts: 0 is not in 1..254',
    ]);
  });

  it('every caller passes its own file and is listed; every listed file exists', () => {
    const callers = testSources(TEST_DIR)
      .filter((f) => !f.endsWith(`${path.sep}helpers.ts`) && f !== __filename && /\bloopbackNet\(/.test(fs.readFileSync(f, 'utf8')))
      .map((f) => path.relative(TEST_DIR, f).split(path.sep).join('/'));
    for (const c of callers) {
      const calls = fs.readFileSync(path.join(TEST_DIR, c), 'utf8').match(/\bloopbackNet\([^)]*\)/g) ?? [];
      expect({ file: c, calls }).toEqual({ file: c, calls: calls.map(() => 'loopbackNet(__filename)') });
    }
    expect(callers.sort()).toEqual(Object.keys(LOOPBACK_NETS).sort());
  });

  it('a file not listed gets no net', () => {
    expect(() => loopbackNet(path.join(TEST_DIR, 'emulators', 'nope.test.ts'))).toThrow('emulators/nope.test.ts has no loopback net: add it to LOOPBACK_NETS in test/emulators/helpers.ts');
    const ip = loopbackNet(path.join(TEST_DIR, 'emulators', 'regions.test.ts'));
    expect(ip(20)).toMatch(new RegExp(`^127\\.1\\d\\d\\.${LOOPBACK_NETS['emulators/regions.test.ts']}\\.20$`));
  });
});
