/**
 * Which modules a TypeScript file imports, and the import cycles among a set of files.
 * A small tokenizer (comments, strings, templates, regex literals) rather than a regex over the
 * text, so an `import` in a comment or a string is not an edge. Type-only imports count: a loop of
 * types is still two modules that cannot be understood (or moved) one without the other.
 */
import * as fs from 'fs';
import * as path from 'path';

type Token = { kind: 'word' | 'punct' | 'string' | 'template' | 'regex' | 'number'; text: string };

const isIdStart = (c: string) => /[A-Za-z_$]/.test(c);
const isId = (c: string) => /[A-Za-z0-9_$]/.test(c);
// After these a `/` divides; after anything else it starts a regex literal.
const endsOperand = (t: Token | undefined) =>
  !!t && (t.kind === 'number' || t.kind === 'string' || t.kind === 'template' || t.kind === 'regex'
    || (t.kind === 'word' && !['return', 'typeof', 'case', 'in', 'of', 'delete', 'void', 'throw', 'new', 'else', 'do', 'yield', 'await'].includes(t.text))
    || (t.kind === 'punct' && [')', ']', '}'].includes(t.text)));

export function tokenize(src: string): Token[] {
  const out: Token[] = [];
  // Brace depth at which each open template `${` resumes its template.
  const templateStack: number[] = [];
  let depth = 0;
  let i = 0;
  const readTemplate = () => {
    // i is just after ` or the } closing an interpolation.
    while (i < src.length) {
      const c = src[i];
      if (c === '\\') { i += 2; continue; }
      if (c === '`') { i++; return; }
      if (c === '$' && src[i + 1] === '{') { i += 2; templateStack.push(depth); depth++; return; }
      i++;
    }
  };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) { i++; continue; }
    if (c === '/' && src[i + 1] === '/') { while (i < src.length && src[i] !== '\n') i++; continue; }
    if (c === '/' && src[i + 1] === '*') { const e = src.indexOf('*/', i + 2); i = e < 0 ? src.length : e + 2; continue; }
    if (c === '"' || c === "'") {
      let j = i + 1;
      let text = '';
      while (j < src.length && src[j] !== c && src[j] !== '\n') { if (src[j] === '\\') { text += src[j + 1]; j += 2; } else text += src[j++]; }
      out.push({ kind: 'string', text });
      i = j + 1;
      continue;
    }
    if (c === '`') { i++; readTemplate(); out.push({ kind: 'template', text: '' }); continue; }
    if (c === '/' && !endsOperand(out[out.length - 1])) {
      let j = i + 1;
      let inClass = false;
      while (j < src.length && src[j] !== '\n') {
        if (src[j] === '\\') { j += 2; continue; }
        if (src[j] === '[') inClass = true;
        else if (src[j] === ']') inClass = false;
        else if (src[j] === '/' && !inClass) break;
        j++;
      }
      j++;
      while (j < src.length && isId(src[j])) j++;
      out.push({ kind: 'regex', text: src.slice(i, j) });
      i = j;
      continue;
    }
    if (isIdStart(c)) {
      let j = i;
      while (j < src.length && isId(src[j])) j++;
      out.push({ kind: 'word', text: src.slice(i, j) });
      i = j;
      continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i;
      while (j < src.length && /[0-9A-Za-z_.]/.test(src[j])) j++;
      out.push({ kind: 'number', text: src.slice(i, j) });
      i = j;
      continue;
    }
    if (c === '{') depth++;
    if (c === '}') {
      depth--;
      if (templateStack.length && templateStack[templateStack.length - 1] === depth) {
        templateStack.pop();
        i++;
        readTemplate();
        out.push({ kind: 'template', text: '' });
        continue;
      }
    }
    out.push({ kind: 'punct', text: c });
    i++;
  }
  return out;
}

/** Module specifiers of `import … from`, `export … from`, `import 'x'`, `import('x')` and `require('x')`. */
export function importSpecifiers(src: string): string[] {
  const t = tokenize(src);
  const specs: string[] = [];
  for (let k = 0; k < t.length; k++) {
    const w = t[k];
    if (w.kind !== 'word') continue;
    const prev = t[k - 1];
    if (prev?.kind === 'punct' && prev.text === '.') continue; // obj.import, Buffer.from(…)
    const next = t[k + 1];
    if ((w.text === 'from' || w.text === 'import') && next?.kind === 'string') specs.push(next.text);
    else if ((w.text === 'import' || w.text === 'require') && next?.text === '(' && t[k + 2]?.kind === 'string' && t[k + 3]?.text === ')') specs.push(t[k + 2].text);
  }
  return specs;
}

/** Resolves a relative specifier to one of `files` (x.ts or x/index.ts); undefined for packages and files outside the set. */
export function resolveSpecifier(from: string, spec: string, files: Set<string>): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.posix.join(path.posix.dirname(from), spec);
  for (const cand of [base, `${base}.ts`, `${base}/index.ts`]) if (files.has(cand)) return cand;
  return undefined;
}

/** Import edges among `sources` (path → text; paths relative, posix). */
export function importGraph(sources: Map<string, string>): Map<string, string[]> {
  const files = new Set(sources.keys());
  const graph = new Map<string, string[]>();
  for (const [file, text] of sources) {
    const deps = importSpecifiers(text).map((s) => resolveSpecifier(file, s, files)).filter((d): d is string => !!d);
    graph.set(file, [...new Set(deps)]);
  }
  return graph;
}

/**
 * One cycle per strongly connected component of more than one module (or a module importing itself),
 * written `a → b → a`, shortest loop through the component's first module.
 */
export function importCycles(graph: Map<string, string[]>): string[] {
  // Tarjan's strongly connected components.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const sccs: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index); low.set(v, index); index++;
    stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); scc.push(w); } while (w !== v);
      sccs.push(scc);
    }
  };
  for (const v of [...graph.keys()].sort()) if (!idx.has(v)) visit(v);
  const cycles: string[] = [];
  for (const scc of sccs) {
    const members = new Set(scc);
    const start = [...scc].sort()[0];
    if (scc.length === 1 && !(graph.get(start) ?? []).includes(start)) continue;
    // Breadth-first from start back to start inside the component.
    const prev = new Map<string, string>();
    const queue = [start];
    let found: string | undefined;
    while (queue.length && !found) {
      const v = queue.shift()!;
      for (const w of graph.get(v) ?? []) {
        if (!members.has(w)) continue;
        if (w === start) { found = v; break; }
        if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
      }
    }
    const loop = [start];
    for (let v = found!; v !== start; v = prev.get(v)!) loop.splice(1, 0, v);
    loop.push(start);
    const extra = scc.length > loop.length - 1 ? ` (and ${scc.length - (loop.length - 1)} more module(s) in the same knot)` : '';
    cycles.push(loop.join(' → ') + extra);
  }
  return cycles.sort();
}

/** Every .ts file under `dirs` (relative to `root`), keyed by posix path relative to root. */
export function readSources(root: string, dirs: string[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = path.posix.join(rel, e.name);
      if (e.isDirectory()) { if (e.name !== 'node_modules') walk(r); }
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.set(r, fs.readFileSync(path.join(root, r), 'utf8'));
    }
  };
  for (const d of dirs) walk(d);
  return out;
}
