/**
 * A tiny template language for the files under templates/:
 *   {{name}}                         value (must be defined: a typo fails loudly)
 *   {{#if name}} … {{else}} … {{/if}}   truthy test (also {{#unless name}} … {{/unless}})
 * A block tag alone on its line removes that whole line, so conditionals leave no blank lines.
 */
import * as fs from 'fs';
import * as path from 'path';

export type TemplateValue = string | number | boolean | undefined | null;
export type TemplateVars = Record<string, TemplateValue>;

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'var'; name: string }
  | { kind: 'block'; test: 'if' | 'unless'; name: string; then: Node[]; else: Node[] };

const TAG = /{{\s*(#if|#unless|else|\/if|\/unless)?\s*([A-Za-z_][A-Za-z0-9_]*)?\s*}}/g;
const STANDALONE = /^[ \t]*({{\s*(?:#if|#unless|else|\/if|\/unless)\b[^}]*}})[ \t]*\r?\n/gm;

export class TemplateError extends Error {}

export function parseTemplate(source: string, name = 'template'): Node[] {
  const text = source.replace(STANDALONE, '$1');
  const root: Node[] = [];
  const stack: Array<{ node: Extract<Node, { kind: 'block' }>; inElse: boolean }> = [];
  const target = (): Node[] => {
    const top = stack[stack.length - 1];
    return top ? (top.inElse ? top.node.else : top.node.then) : root;
  };
  let last = 0;
  for (const m of text.matchAll(TAG)) {
    const at = m.index ?? 0;
    if (at > last) target().push({ kind: 'text', text: text.slice(last, at) });
    last = at + m[0].length;
    const [, op, ident] = m;
    if (!op) {
      if (!ident) throw new TemplateError(`${name}: empty tag at offset ${at}`);
      target().push({ kind: 'var', name: ident });
    } else if (op === '#if' || op === '#unless') {
      if (!ident) throw new TemplateError(`${name}: ${op} needs a variable name`);
      const node: Extract<Node, { kind: 'block' }> = { kind: 'block', test: op === '#if' ? 'if' : 'unless', name: ident, then: [], else: [] };
      target().push(node);
      stack.push({ node, inElse: false });
    } else if (op === 'else') {
      const top = stack[stack.length - 1];
      if (!top || top.inElse) throw new TemplateError(`${name}: unexpected {{else}} at offset ${at}`);
      top.inElse = true;
    } else {
      const top = stack.pop();
      if (!top || `/${top.node.test}` !== op) throw new TemplateError(`${name}: unexpected {{${op}}} at offset ${at}`);
    }
  }
  if (stack.length > 0) throw new TemplateError(`${name}: {{#${stack[stack.length - 1].node.test} ${stack[stack.length - 1].node.name}}} is never closed`);
  if (last < text.length) root.push({ kind: 'text', text: text.slice(last) });
  return root;
}

function truthy(v: TemplateValue): boolean {
  return !(v === undefined || v === null || v === false || v === '' || v === 0);
}

function renderNodes(nodes: Node[], vars: TemplateVars, name: string): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'var') {
      const v = vars[n.name];
      if (v === undefined || v === null) throw new TemplateError(`${name}: variable "${n.name}" is not set`);
      out += String(v);
    } else {
      const pass = truthy(vars[n.name]) === (n.test === 'if');
      out += renderNodes(pass ? n.then : n.else, vars, name);
    }
  }
  return out;
}

export function renderTemplate(source: string, vars: TemplateVars, name = 'template'): string {
  return renderNodes(parseTemplate(source, name), vars, name);
}

let templatesDirCache: string | undefined;

/** The repo's templates/ directory (from src/render under ts-jest, or dist/src/render). */
export function templatesDir(): string {
  if (templatesDirCache) return templatesDirCache;
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'templates');
    if (fs.existsSync(path.join(candidate, 'system.service.tpl'))) return (templatesDirCache = candidate);
    const up = path.dirname(dir);
    if (up === dir) throw new TemplateError(`cannot find the templates/ directory above ${__dirname}`);
    dir = up;
  }
}

const cache = new Map<string, string>();

export function loadTemplate(file: string): string {
  let t = cache.get(file);
  if (t === undefined) {
    t = fs.readFileSync(path.join(templatesDir(), file), 'utf8');
    cache.set(file, t);
  }
  return t;
}

export function renderFile(file: string, vars: TemplateVars): string {
  return renderTemplate(loadTemplate(file), vars, file);
}
