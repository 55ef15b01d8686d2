import * as path from 'path';
import { importCycles, importGraph, importSpecifiers, readSources } from './scan';

const root = path.join(__dirname, '..', '..');

describe('import scanner', () => {
  it('finds every form of import and export-from, type-only ones included', () => {
    const src = [
      "import * as fs from 'fs';",
      "import type { A } from './a';",
      'import {',
      '  b,',
      '  type B,',
      "} from './b';",
      "export { c } from './c';",
      "export * from './d';",
      "import './e';",
      "export interface X { facts?: import('./f').F; g: typeof import(\"./g\") }",
      "const h = require('./h');",
    ].join('\n');
    expect(importSpecifiers(src)).toEqual(['fs', './a', './b', './c', './d', './e', './f', './g', './h']);
  });

  it('ignores imports in comments, strings, templates and regex literals', () => {
    const src = [
      "// import { a } from './a';",
      "/* import './b'; */",
      "const s = \"import x from './c'\";",
      'const t = `from ${"./d"} import(\'./e\') ${`nested ${1}`}`;',
      "const r = /['\"]from '.\\/f'/;",
      "const buf = Buffer.from('./g');",
      "import { real } from './real';",
    ].join('\n');
    expect(importSpecifiers(src)).toEqual(['./real']);
  });

  it('reports a loop with its path, and none for a chain', () => {
    const chain = new Map([['x/a.ts', "import { b } from './b';"], ['x/b.ts', "import { c } from './c';"], ['x/c.ts', '']]);
    expect(importCycles(importGraph(chain))).toEqual([]);
    const loop = new Map([
      ['x/a.ts', "import { b } from './b';"],
      ['x/b.ts', "import type { C } from '../y';"],
      ['y/index.ts', "export const x: import('../x/a').A = 1;"],
    ]);
    expect(importCycles(importGraph(loop))).toEqual(['x/a.ts → x/b.ts → y/index.ts → x/a.ts']);
  });

  // The two loops issue #16 found, as their import lines were: the scanner must see both.
  it('finds the old tasks and bench loops', () => {
    const old = new Map([
      ['src/tasks/context.ts', "facts?: import('./facts').ClusterFacts;\nproblems?: import('./preflight').Problem[];"],
      ['src/tasks/facts.ts', "import { executorFor, TlsContext } from './context';"],
      ['src/tasks/preflight.ts', "import { ClusterFacts, factKey, gatherFacts } from './facts';\nimport type { TlsContext } from './context';"],
      ['bench/report.ts', "import type { BenchArgs } from './run';"],
      ['bench/run.ts', "import { renderResults, type BenchResults } from './report';"],
    ]);
    expect(importCycles(importGraph(old))).toEqual([
      'bench/report.ts → bench/run.ts → bench/report.ts',
      'src/tasks/context.ts → src/tasks/facts.ts → src/tasks/context.ts (and 1 more module(s) in the same knot)',
    ]);
  });
});

describe('import cycles', () => {
  it('src/, bench/ and lab/ import in one direction only', () => {
    const sources = readSources(root, ['src', 'bench', 'lab']);
    expect(sources.size).toBeGreaterThan(50);
    expect(importCycles(importGraph(sources))).toEqual([]);
  });
});
