import * as fs from 'fs';
import * as path from 'path';
import { renderResults } from '../../bench/report';

// Benchmark figures are quoted once, in the generated bench/RESULTS.md; the READMEs link to it.
const root = path.join(__dirname, '..', '..');
const read = (f: string) => fs.readFileSync(path.join(root, f), 'utf8');

/** Settings the READMEs may name (they are code and etcd defaults, not measurements). */
const SETTINGS = new Set([
  '100 ms', // prober interval, first health-gate poll (src/tasks/restart/health.ts)
  '1.5×', // health-gate backoff factor
  '0.5 s', // health-gate poll cap
  '250 ms', // scale-in retry (src/tasks/pd/scale-in.ts)
  '1 s', // etcd's default election timeout (the lab's)
  '3 s', // PD's election timeout
  '5 s', // etcd strict reconfiguration: newest member connected this long
]);

const FIGURE = /(?:(?:about|roughly|~|≈)\s?)?\d+(?:\.\d+)?(?:\s?[–-]\s?\d+(?:\.\d+)?)?\s?(?:ms|s|×|x|MiB|GiB|KiB|%|minutes)(?![\w])|R²\s?[=≈]\s?\d(?:\.\d+)?/g;
const norm = (f: string) => f.replace(/\s+(?=[×x]$)/, '').replace(/\s+/g, ' ');

/**
 * A figure reads as a measurement when it is approximate, a ratio, a range or a fit; a plain value
 * with a unit ("64 KiB", "30 s") is a limit or setting that the prose may name freely.
 */
const MEASURED = /^(?:about|roughly|~|≈)|[×x]$|\d\s?[–-]\s?\d|^R²/;

/** Measured-looking figures in `text` that RESULTS.md does not contain and that are not settings. */
function handQuoted(text: string, results: string): string[] {
  const generated = norm(results);
  return [...text.matchAll(FIGURE)]
    .map((m) => norm(m[0]))
    .filter((f) => MEASURED.test(f) && !SETTINGS.has(f) && !generated.includes(f) && !generated.includes(f.replace(/×$/, ' ×')));
}

describe('bench numbers', () => {
  const results = read('bench/RESULTS.md');

  it('bench/RESULTS.md is what the report renders from bench/results.json', () => {
    expect(results).toBe(renderResults(JSON.parse(read('bench/results.json'))));
  });

  it.each(['README.md', 'bench/README.md'])('%s quotes no figure the bench did not generate', (file) => {
    expect(handQuoted(read(file), results)).toEqual([]);
  });

  it('catches the figures issue #16 found, and lets generated ones through', () => {
    const old = 'for a longer outage (about 2× on the lab); native RSA generation is 11.7× faster; linear (R² ≈ 0.998); critical path 4.0–4.3 s';
    expect(handQuoted(old, results)).toEqual(['about 2×', '11.7×', 'R² ≈ 0.998', '4.0–4.3 s']);
    const fit = /R² = \d\.\d+/.exec(results)?.[0] ?? 'R² = 0.996'; // whatever the last scale run fitted
    const forge = /\*\*(\d+\.\d) ×\*\* slower/.exec(results)?.[1] ?? '12.3'; // whatever the last certs run measured
    expect(handQuoted(`node-forge is ${forge}× slower; ${fit}; median outage 2.15 s`, results)).toEqual([]);
  });
});
