/**
 * js-yaml 4 returns plain values without source positions. Its `listener` option reports every
 * node as an open/close pair (with the parser's offset), so we rebuild a position tree beside the
 * loaded data and look values up by path afterwards.
 */
import * as yaml from 'js-yaml';

export interface Pos {
  line: number; // 1-based
  column: number; // 1-based
}

export interface PosNode {
  /** Offset of the node's first character (after leading blanks and comments). */
  start: number;
  /** Offset just past the node. */
  end: number;
  kind: 'mapping' | 'sequence' | 'scalar' | null;
  value: unknown;
  /** Mapping entries by key as js-yaml stores them (String(key)). */
  entries?: Map<string, { key: PosNode; value?: PosNode }>;
  items?: PosNode[];
}

interface Frame {
  open: number;
  end: number;
  kind: PosNode['kind'];
  value: unknown;
  children: Frame[];
}

export class YamlSyntaxError extends Error {
  constructor(
    readonly reason: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(reason);
  }
}

export interface LoadedYaml {
  data: unknown;
  root: PosNode | undefined;
  text: string;
  /** Offset → 1-based line/column. */
  pos(offset: number): Pos;
  /** The source text of a node, trimmed (a plain scalar's exact spelling). */
  source(node: PosNode): string;
}

/** Parse one YAML document, keeping node positions. Throws YamlSyntaxError with the parser's position. */
export function loadYamlWithPositions(input: string): LoadedYaml {
  // js-yaml drops a leading BOM itself, which would shift every offset by one.
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const stack: Frame[] = [{ open: 0, end: 0, kind: null, value: undefined, children: [] }];
  let data: unknown;
  try {
    data = yaml.load(text, {
      listener(event, state) {
        if (event === 'open') {
          stack.push({ open: state.position, end: state.position, kind: null, value: undefined, children: [] });
        } else {
          const frame = stack.pop()!;
          frame.end = state.position;
          frame.kind = (state.kind as PosNode['kind']) ?? null;
          frame.value = state.result;
          stack[stack.length - 1].children.push(frame);
        }
      },
    });
  } catch (e) {
    if (e instanceof yaml.YAMLException) {
      const mark = (e as yaml.YAMLException & { mark?: { line: number; column: number } }).mark;
      throw new YamlSyntaxError(e.reason || e.message, (mark?.line ?? 0) + 1, (mark?.column ?? 0) + 1);
    }
    throw e;
  }
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lineStarts.push(i + 1);
  const pos = (offset: number): Pos => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    return { line: lo + 1, column: offset - lineStarts[lo] + 1 };
  };
  const top = stack[0].children[0];
  return {
    data,
    root: top ? toNode(top, text) : undefined,
    text,
    pos,
    source: (node) => text.slice(node.start, node.end).trim(),
  };
}

function skipBlank(text: string, from: number, to: number): number {
  let i = from;
  while (i < to) {
    const c = text[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') i++;
    else if (c === '#') {
      while (i < to && text[i] !== '\n') i++;
    } else break;
  }
  return i < to ? i : from;
}

/** A key is followed (after blanks on the same line, or a newline for explicit keys) by ':'. */
function followedByColon(text: string, frame: Frame): boolean {
  let i = frame.end;
  while (i < text.length && (text[i] === ' ' || text[i] === '\t')) i++;
  return text[i] === ':';
}

function toNode(frame: Frame, text: string): PosNode {
  const node: PosNode = {
    start: skipBlank(text, frame.open, frame.end),
    end: frame.end,
    kind: frame.kind,
    value: frame.value,
  };
  if (frame.kind === 'mapping') {
    node.entries = new Map();
    const kids = frame.children;
    // Children come as key, value, key, value...; a key with no value node ("{a, b: 1}")
    // shows up as a key directly followed by the next key.
    for (let i = 0; i < kids.length; ) {
      const key = toNode(kids[i], text);
      const next = kids[i + 1];
      let value: PosNode | undefined;
      if (next && !followedByColon(text, next)) {
        value = toNode(next, text);
        i += 2;
      } else {
        i += 1;
      }
      node.entries.set(String(key.value), { key, value });
    }
  } else if (frame.kind === 'sequence') {
    node.items = frame.children.map((c) => toNode(c, text));
  }
  return node;
}

/** The entry (key node and value node) of `key` in a mapping node. */
export function entryOf(node: PosNode | undefined, key: string): { key: PosNode; value?: PosNode } | undefined {
  return node?.entries?.get(key);
}

export function itemOf(node: PosNode | undefined, index: number): PosNode | undefined {
  return node?.items?.[index];
}
