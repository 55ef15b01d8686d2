/**
 * Locate the pieces of a block-style YAML file by lines, so a rewrite can splice a few lines and
 * leave every other byte (comments, quoting, order) as written. Only the plain block layout is
 * understood; callers re-parse their result and refuse when it does not say what they wanted.
 */

export interface Line {
  /** The line without its terminator. */
  body: string;
  /** '\n', '\r\n' or '' (last line without one). */
  eol: string;
}

export function splitLines(text: string): Line[] {
  const out: Line[] = [];
  const re = /([^\n]*?)(\r?\n|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) && m[0] !== '') out.push({ body: m[1], eol: m[2] });
  return out;
}

export const joinLines = (lines: Line[]): string => lines.map((l) => l.body + l.eol).join('');

const indentOf = (s: string): number => s.length - s.trimStart().length;
/** Blank and comment lines neither open nor close a block. */
const isFiller = (s: string): boolean => /^\s*(#.*)?$/.test(s);
const isSeqEntry = (s: string, col: number): boolean => indentOf(s) === col && /^-(\s|$)/.test(s.slice(col));

const KEY = /^(?:"([^"\\]*)"|'([^']*)'|([A-Za-z_][\w.-]*))[ \t]*:(?=[ \t]|$)/;

/** The key at the start of `s` and the rest after its colon, or undefined. */
function keyAt(s: string): { key: string; rest: string } | undefined {
  const m = KEY.exec(s);
  return m ? { key: m[1] ?? m[2] ?? m[3], rest: s.slice(m[0].length) } : undefined;
}

export interface KeyBlock {
  key: string;
  /** What follows `key:` on its line (value and comment). */
  rest: string;
  /** Line range [start, end): the key line and its nested lines, without trailing blank/comment lines. */
  start: number;
  end: number;
}

/** End of the block opened at line `start` whose own key sits at column `col` (sequences may sit at `col` too). */
function blockEnd(lines: Line[], start: number, end: number, col: number, seqAtCol: boolean): number {
  let last = start;
  for (let i = start + 1; i < end; i++) {
    const s = lines[i].body;
    if (isFiller(s)) continue;
    const ind = indentOf(s);
    if (ind > col || (seqAtCol && isSeqEntry(s, col))) last = i;
    else break;
  }
  return last + 1;
}

/** The keys of the mapping whose keys sit at column `col` within lines [start, end); the first may follow `- ` on line `start`. */
export function mappingKeys(lines: Line[], start: number, end: number, col: number): KeyBlock[] {
  const keys: KeyBlock[] = [];
  for (let i = start; i < end; ) {
    const s = lines[i].body;
    if (isFiller(s) || (i > start && indentOf(s) !== col) || (i === start && s.length <= col)) {
      i++;
      continue;
    }
    const k = keyAt(s.slice(col));
    const e = blockEnd(lines, i, end, col, true);
    if (k) keys.push({ key: k.key, rest: k.rest, start: i, end: e });
    i = e;
  }
  return keys;
}

export interface SeqItem {
  /** Line range [start, end) of the `- ` entry and its nested lines. */
  start: number;
  end: number;
  /** Column of the item's mapping keys, or undefined when the item is no block mapping. */
  keyCol?: number;
}

/**
 * The entries of the block sequence that is the value of top-level `key`, or undefined when the key
 * is absent or its value is not a block sequence (flow style, anchors, inline values).
 */
export function topLevelSequence(lines: Line[], key: string): SeqItem[] | undefined {
  const at = lines.findIndex((l) => indentOf(l.body) === 0 && keyAt(l.body)?.key === key);
  if (at < 0 || !isFiller(keyAt(lines[at].body)!.rest)) return undefined;
  let first = at + 1;
  while (first < lines.length && isFiller(lines[first].body)) first++;
  if (first >= lines.length) return [];
  const col = indentOf(lines[first].body);
  // The next top-level line right away: an empty (null) value.
  if (!isSeqEntry(lines[first].body, col)) return col === 0 ? [] : undefined;
  const items: SeqItem[] = [];
  let i = first;
  while (i < lines.length && isSeqEntry(lines[i].body, col)) {
    let end = i + 1;
    for (let j = i + 1; j < lines.length; j++) {
      const s = lines[j].body;
      if (isFiller(s)) continue;
      if (indentOf(s) <= col) break;
      end = j + 1;
    }
    const after = lines[i].body.slice(col + 1);
    let keyCol: number | undefined;
    if (!isFiller(after)) keyCol = col + 1 + indentOf(after);
    else {
      const next = lines.slice(i + 1, end).find((l) => !isFiller(l.body));
      keyCol = next ? indentOf(next.body) : undefined;
    }
    // A flow mapping, a nested sequence or a scalar after `- ` is no block mapping.
    if (!isFiller(after) && !keyAt(lines[i].body.slice(keyCol!))) keyCol = undefined;
    items.push({ start: i, end, keyCol });
    i = end;
    while (i < lines.length && isFiller(lines[i].body)) i++;
  }
  return items;
}
