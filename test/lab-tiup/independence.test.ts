/** lab/tiup must not import tiseal's src/ (issue #25 item 5): it is the independent TiUP the lab checks src/render against. */
import * as fs from 'fs';
import * as path from 'path';

const DIR = path.join(__dirname, '../../lab/tiup');

test('no file in lab/tiup imports anything outside lab/tiup but node and js-yaml', () => {
  const bad: string[] = [];
  for (const f of fs.readdirSync(DIR).filter((n) => n.endsWith('.ts'))) {
    const text = fs.readFileSync(path.join(DIR, f), 'utf8');
    for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"]([^'"]+)['"]/g)) {
      const spec = m[1];
      const ok = spec.startsWith('./') ? !spec.includes('..') : ['fs', 'path', 'path/posix', 'net', 'js-yaml'].includes(spec);
      if (!ok) bad.push(`${f}: ${spec}`);
    }
  }
  expect(bad).toEqual([]);
});
