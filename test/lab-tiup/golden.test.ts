/**
 * lab/tiup renders TiUP's files exactly: every file equals its golden under fixtures/golden/<meta>/<host>/<path>,
 * and no file is missing or extra. The goldens were checked line by line against pingcap/tiup v1.16.5's
 * templates and spec code (see lab/tiup/*.ts for which file each follows). TIUP_GOLDEN_WRITE=1 rewrites them.
 */
import * as fs from 'fs';
import * as path from 'path';
import { renderCluster } from '../../lab/tiup/render';
import { parseMeta } from '../../lab/tiup/spec';

const FIX = path.join(__dirname, 'fixtures');
const META = ['example', 'lab-default', 'tls-float'];

function walk(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe.each(META)('%s.meta.yaml', (name) => {
  const cluster = parseMeta(fs.readFileSync(path.join(FIX, `${name}.meta.yaml`), 'utf8'), name);
  const files = renderCluster(cluster);
  const root = path.join(FIX, 'golden', name);
  if (process.env.TIUP_GOLDEN_WRITE) {
    fs.rmSync(root, { recursive: true, force: true });
    for (const f of files) {
      const p = path.join(root, f.host, f.path);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, f.content);
    }
  }

  test('the same set of files as the goldens', () => {
    const rendered = files.map((f) => path.join(f.host, f.path)).sort();
    const golden = walk(root).map((p) => path.relative(root, p)).sort();
    expect(rendered).toEqual(golden);
  });

  test.each(files.map((f) => [path.join(f.host, f.path), f.content] as const))('%s', (rel, content) => {
    expect(content).toBe(fs.readFileSync(path.join(root, rel), 'utf8'));
  });
});

test('schedule.tolerant-size-ratio: 5.0 stays a float in pd.toml (issue #25 item 5)', () => {
  const c = parseMeta(fs.readFileSync(path.join(FIX, 'tls-float.meta.yaml'), 'utf8'), 'tls-float');
  const pd = renderCluster(c).find((f) => f.path.endsWith('/conf/pd.toml'))!;
  expect(pd.content).toContain('\ntolerant-size-ratio = 5.0\n');
  expect(pd.content).toContain('\nleader-schedule-limit = 4\n');
});
