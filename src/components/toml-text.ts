import * as TOML from '@iarna/toml';
import { TisealError } from '../errors';
import { tomlString } from '../render/toml';

/**
 * Edit a TOML file in place: the wanted document is compared with the parsed text and only the
 * keys that differ are touched, so every other byte (comments, order, blank lines, `5.0` vs `5`)
 * stays as the operator or TiUP wrote it. PD decodes its config with an old BurntSushi/toml that
 * refuses an integer where it wants a float, so re-serialising a file is not an option.
 */

type Table = { [key: string]: unknown };
const isTable = (v: unknown): v is Table => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
const isTableArray = (v: unknown): boolean => Array.isArray(v) && v.length > 0 && v.every(isTable);

export class TomlEditError extends TisealError {}

interface Entry {
  path: string[];
  /** Path of the header section the entry sits in. */
  section: string[];
  /** Key parts as written (relative to the section). */
  keyParts: string[];
  lineStart: number;
  valueStart: number;
  valueEnd: number;
  /** End of the entry's last line, newline included. */
  lineEnd: number;
}

interface Header {
  path: string[];
  array: boolean;
  lineStart: number;
  lineEnd: number;
}

const BARE = /[A-Za-z0-9_-]/;

/** Parse `a."b.c".d` starting at i; returns parts and the index after the key. */
function readKey(s: string, i: number, stop: string): { parts: string[]; end: number } {
  const parts: string[] = [];
  for (;;) {
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (s[i] === '"' || s[i] === "'") {
      const q = s[i];
      let j = i + 1;
      let raw = '';
      while (j < s.length && s[j] !== q) {
        if (q === '"' && s[j] === '\\') {
          raw += s.slice(j, j + 2);
          j += 2;
        } else raw += s[j++];
      }
      parts.push(q === '"' ? (JSON.parse(`"${raw}"`) as string) : raw);
      i = j + 1;
    } else {
      let j = i;
      while (j < s.length && BARE.test(s[j])) j++;
      if (j === i) throw new Error(`bad key at offset ${i}`);
      parts.push(s.slice(i, j));
      i = j;
    }
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (s[i] === '.') {
      i++;
      continue;
    }
    if (!stop.includes(s[i])) throw new Error(`bad key at offset ${i}`);
    return { parts, end: i };
  }
}

/** Index just after the TOML value starting at i (strings, arrays across lines, inline tables). */
function skipValue(s: string, i: number): number {
  const c = s[i];
  if (s.startsWith('"""', i) || s.startsWith("'''", i)) {
    const q = s.slice(i, i + 3);
    let j = i + 3;
    for (;;) {
      const k = s.indexOf(q, j);
      if (k < 0) throw new Error('unterminated string');
      if (q === '"""' && countBackslashes(s, k) % 2 === 1) {
        j = k + 1;
        continue;
      }
      let e = k + 3;
      while (s[e] === q[0]) e++; // up to two quotes may close the content
      return e;
    }
  }
  if (c === '"' || c === "'") {
    let j = i + 1;
    while (j < s.length && s[j] !== c) j += c === '"' && s[j] === '\\' ? 2 : 1;
    return j + 1;
  }
  if (c === '[' || c === '{') {
    let depth = 0;
    let j = i;
    while (j < s.length) {
      const d = s[j];
      if (d === '"' || d === "'") j = skipValue(s, j);
      else if (d === '#') while (j < s.length && s[j] !== '\n') j++;
      else {
        if (d === '[' || d === '{') depth++;
        if (d === ']' || d === '}') depth--;
        j++;
        if (depth === 0) return j;
      }
    }
    throw new Error('unterminated array');
  }
  let j = i;
  while (j < s.length && !/[\s#,\]}]/.test(s[j])) j++;
  // Local date-times may hold one space ("1979-05-27 07:32:00").
  if (s[j] === ' ' && /^\d{4}-\d\d-\d\d$/.test(s.slice(i, j)) && /\d/.test(s[j + 1] ?? '')) return skipValue(s, j + 1);
  return j;
}

function countBackslashes(s: string, end: number): number {
  let n = 0;
  while (s[end - 1 - n] === '\\') n++;
  return n;
}

function endOfLine(s: string, i: number): number {
  const k = s.indexOf('\n', i);
  return k < 0 ? s.length : k + 1;
}

function scan(s: string): { entries: Entry[]; headers: Header[] } {
  const entries: Entry[] = [];
  const headers: Header[] = [];
  let section: string[] = [];
  let i = 0;
  while (i < s.length) {
    const lineStart = i;
    while (s[i] === ' ' || s[i] === '\t' || s[i] === '\r') i++;
    if (s[i] === '\n' || s[i] === '#' || i >= s.length) {
      i = endOfLine(s, i);
      continue;
    }
    if (s[i] === '[') {
      const array = s[i + 1] === '[';
      const k = readKey(s, i + (array ? 2 : 1), ']');
      section = k.parts;
      const lineEnd = endOfLine(s, k.end);
      headers.push({ path: k.parts, array, lineStart, lineEnd });
      i = lineEnd;
      continue;
    }
    const k = readKey(s, i, '=');
    let v = k.end + 1;
    while (s[v] === ' ' || s[v] === '\t') v++;
    const valueEnd = skipValue(s, v);
    const lineEnd = endOfLine(s, valueEnd);
    entries.push({ path: [...section, ...k.parts], section, keyParts: k.parts, lineStart, valueStart: v, valueEnd, lineEnd });
    i = lineEnd;
  }
  return { entries, headers };
}

export function tomlValueText(v: unknown): string {
  if (typeof v === 'string') return tomlString(v);
  if (typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (Array.isArray(v) && !isTableArray(v)) return `[${v.map(tomlValueText).join(', ')}]`;
  throw new TomlEditError(`tiseal cannot write ${JSON.stringify(v)} into a TOML file`);
}

const keyText = (parts: string[]): string => parts.map((p) => (/^[A-Za-z0-9_-]+$/.test(p) ? p : tomlString(p))).join('.');
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);
const eqPath = (a: string[], b: string[]): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const under = (p: string[], prefix: string[]): boolean => p.length >= prefix.length && prefix.every((x, i) => p[i] === x);

type Change = { path: string[]; value?: unknown };

/** Leaf differences between two documents (tables recurse; arrays of tables count as one leaf). */
function diff(before: Table, after: Table, at: string[] = [], out: Change[] = []): Change[] {
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) {
    const [b, a] = [before[k], after[k]];
    if (isTable(b) && isTable(a)) diff(b, a, [...at, k], out);
    else if (isTable(b) && a === undefined) diff(b, {}, [...at, k], out);
    else if (isTable(a) && b === undefined) diff({}, a, [...at, k], out);
    else if (!same(a, b)) out.push({ path: [...at, k], value: a });
  }
  return out;
}

/** Drop empty tables so `[security]` left with only a comment compares equal to no table. */
function pruned(t: Table): Table {
  const out: Table = {};
  for (const [k, v] of Object.entries(t)) {
    if (isTable(v)) {
      const p = pruned(v);
      if (Object.keys(p).length > 0) out[k] = p;
    } else out[k] = v;
  }
  return out;
}

/**
 * The text of `text` changed to say `wanted`, touching only differing keys. `where` names the file
 * in errors. Throws TomlEditError when a key cannot be edited in place (e.g. inside an inline table).
 */
export function editTomlText(text: string, wanted: Table, where = 'config file'): string {
  const before = TOML.parse(text) as Table;
  const changes = diff(before, wanted);
  if (changes.length === 0) return text;
  const fail = (msg: string): never => {
    throw new TomlEditError(`${where}: ${msg}`, {
      suggestion: 'write the key as a plain `key = value` line under its [table] header (tiseal edits config lines in place and keeps the rest of the file)',
    });
  };
  let s = text;
  // One change at a time, rescanning: files are small and offsets stay simple.
  const removedAt = new Map<string, { pos: number; raw: string; value: unknown }>();
  for (const c of changes.filter((x) => x.value === undefined)) {
    const { entries } = scan(s);
    const e = entries.find((x) => eqPath(x.path, c.path));
    if (!e) fail(`cannot remove ${c.path.join('.')}: it is not a plain key line`);
    const table = c.path.slice(0, -1).join('\u0000');
    const old = getAt(before, c.path);
    if (!removedAt.has(table)) removedAt.set(table, { pos: e!.lineStart, raw: s.slice(e!.valueStart, e!.valueEnd), value: old });
    s = s.slice(0, e!.lineStart) + s.slice(e!.lineEnd);
  }
  for (const c of changes.filter((x) => x.value !== undefined)) {
    const { entries, headers } = scan(s);
    const e = entries.find((x) => eqPath(x.path, c.path));
    if (e) {
      s = s.slice(0, e.valueStart) + tomlValueText(c.value) + s.slice(e.valueEnd);
      continue;
    }
    if (entries.some((x) => under(c.path, x.path))) fail(`cannot set ${c.path.join('.')} inside an inline table`);
    const table = c.path.slice(0, -1);
    const key = c.path[c.path.length - 1];
    const slot = removedAt.get(table.join('\u0000'));
    // A key replacing one removed from the same table (http_port → https_port) takes its line, and
    // its value text when the value is the same.
    const valueText = slot && same(slot.value, c.value) ? slot.raw : tomlValueText(c.value);
    if (slot) {
      removedAt.delete(table.join('\u0000'));
      s = `${s.slice(0, slot.pos)}${keyText([key])} = ${valueText}\n${s.slice(slot.pos)}`;
      continue;
    }
    const inSection = entries.filter((x) => eqPath(x.section, table));
    const header = headers.find((h) => !h.array && eqPath(h.path, table));
    let pos: number;
    let line: string;
    if (inSection.length > 0 || header || table.length === 0) {
      pos = inSection.length > 0 ? inSection[inSection.length - 1].lineEnd : header ? header.lineEnd : headers[0]?.lineStart ?? s.length;
      line = `${keyText([key])} = ${valueText}\n`;
      if (table.length === 0 && inSection.length === 0 && headers.length > 0) line += '\n';
    } else {
      // Dotted keys of this table written in a parent section: add another one next to them.
      const dotted = entries.filter((x) => under(x.path, table) && x.path.length === table.length + 1);
      if (dotted.length > 0) {
        const last = dotted[dotted.length - 1];
        pos = last.lineEnd;
        line = `${keyText([...last.keyParts.slice(0, -1), key])} = ${valueText}\n`;
      } else {
        pos = s.length;
        // One blank line before the new table (a last line without its newline gets one below).
        const sep = s.length === 0 || s.endsWith('\n\n') ? '' : '\n';
        line = `${sep}[${keyText(table)}]\n${keyText([key])} = ${valueText}\n`;
      }
    }
    if (pos > 0 && s[pos - 1] !== '\n') line = '\n' + line;
    s = s.slice(0, pos) + line + s.slice(pos);
  }
  s = dropEmptyHeaders(s, wanted);
  // A file that ended without a newline (TiUP's ngmonitoring.toml.tpl) still does: an appended
  // table and its removal then give the file back byte for byte.
  if (text !== '' && !text.endsWith('\n')) s = s.replace(/\n+$/, '');
  let got: Table;
  try {
    got = TOML.parse(s) as Table;
  } catch (e) {
    return fail(`the edited file would not parse: ${(e as Error).message}`);
  }
  if (!same(sortDeep(pruned(got)), sortDeep(pruned(wanted)))) fail('the edited file would not say what tiseal wants; nothing was written');
  return s;
}

function getAt(t: Table, p: string[]): unknown {
  let cur: unknown = t;
  for (const k of p) cur = isTable(cur) ? cur[k] : undefined;
  return cur;
}

function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (!isTable(v)) return v;
  return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortDeep(v[k])]));
}

/** A header tiseal emptied (its table is gone from the wanted document and only blank lines follow) goes too. */
function dropEmptyHeaders(s: string, wanted: Table): string {
  for (;;) {
    const { entries, headers } = scan(s);
    const victim = headers.find((h, i) => {
      if (h.array || getAt(wanted, h.path) !== undefined) return false;
      if (entries.some((e) => eqPath(e.section, h.path))) return false;
      const end = headers[i + 1]?.lineStart ?? s.length;
      return s.slice(h.lineEnd, end).trim() === '';
    });
    if (!victim) return s;
    const i = headers.indexOf(victim);
    const end = headers[i + 1]?.lineStart ?? s.length;
    let start = victim.lineStart;
    // Last in the file: also the blank line that separated it (the one tiseal added with it).
    if (end === s.length && s[start - 1] === '\n' && s[start - 2] === '\n') start--;
    // Between two sections: the blank line that separated them stays (TiUP's ngmonitoring.toml
    // has `[security]` right under `[pd]`'s last line and a blank line before `[storage]`).
    const keepBlank = end < s.length && start >= 2 && s[start - 2] !== '\n' && s.slice(victim.lineEnd, end).includes('\n');
    const cut = keepBlank ? end - 1 : end;
    s = s.slice(0, start) + s.slice(cut);
  }
}
