/**
 * TiUP's config merge and TOML writing, independent of tiseal's src/render:
 * pingcap/tiup v1.16.5 pkg/cluster/spec/server_config.go (FlattenMap, FoldMap, MergeConfig, Merge2Toml)
 * and the encoder it calls, github.com/BurntSushi/toml v1.5.0 encode.go (enc.Indent = "").
 */
import { GoFloat } from './yaml';

export type GoMap = { [key: string]: unknown };

export const isMap = (v: unknown): v is GoMap =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof GoFloat);

/** server_config.go FlattenMap: `{a: {b: 1}}` → `{"a.b": 1}`; an empty sub-map disappears. */
export function flattenMap(m: GoMap): GoMap {
  const out: GoMap = {};
  for (const [k, v] of Object.entries(m)) {
    if (!isMap(v)) {
      out[k] = v;
      continue;
    }
    for (const [sk, sv] of Object.entries(flattenMap(v))) out[`${k}.${sk}`] = sv;
  }
  return out;
}

function foldKey(key: string, val: unknown): [string, unknown] {
  const dot = key.indexOf('.');
  if (dot < 0) return [key, val];
  const [sub, subVal] = foldKey(key.slice(dot + 1), val);
  return [key.slice(0, dot), { [sub]: subVal }];
}

/** server_config.go patch: map onto map merges key by key, anything else overwrites. */
function patch(origin: GoMap, key: string, val: unknown): void {
  const cur = origin[key];
  if (isMap(cur) && isMap(val)) for (const [k, v] of Object.entries(val)) patch(cur, k, v);
  else origin[key] = val;
}

/** server_config.go FoldMap: flatten, then nest every dotted key. */
export function foldMap(m: GoMap | undefined): GoMap {
  const out: GoMap = {};
  for (const [k, v] of Object.entries(flattenMap(m ?? {}))) {
    const [key, val] = foldKey(k, v);
    patch(out, key, val);
  }
  return out;
}

/** server_config.go MergeConfig(orig, overwrites...). */
export function mergeConfig(orig: GoMap | undefined, ...overwrites: Array<GoMap | undefined>): GoMap {
  const lhs = foldMap(orig);
  for (const o of overwrites) for (const [k, v] of Object.entries(foldMap(o))) patch(lhs, k, v);
  return lhs;
}

// encode.go dblQuotedReplacer.
function quoted(s: string): string {
  const named: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\b': '\\b', '\t': '\\t', '\n': '\\n', '\f': '\\f', '\r': '\\r' };
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (named[ch]) out += named[ch];
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return `"${out}"`;
}

const BARE = /^[A-Za-z0-9_-]+$/;
/** meta.go Key.maybeQuoted. */
const keyPart = (k: string): string => (k === '' ? '""' : BARE.test(k) ? k : quoted(k));

/** strconv.FormatFloat(f, 'f', -1, 64): shortest round-trip digits, never an exponent. */
export function formatFloatF(f: number): string {
  const s = String(f);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, int, frac = '', expS] = m;
  const exp = Number(expS);
  const digits = int + frac;
  if (exp >= 0) return sign + (digits.length > exp + 1 ? `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}` : digits + '0'.repeat(exp + 1 - digits.length));
  return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
}

/** encode.go eElement. */
function element(v: unknown): string {
  if (v instanceof GoFloat) {
    const f = v.value;
    if (Number.isNaN(f)) return 'nan';
    if (!Number.isFinite(f)) return f < 0 ? '-inf' : 'inf';
    const s = formatFloatF(f);
    return s.includes('.') ? s : `${s}.0`; // floatAddDecimal
  }
  if (typeof v === 'string') return quoted(v);
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    // A JS number here came from a YAML int (floats are GoFloat) or from TiUP's own int fields.
    if (!Number.isInteger(v)) throw new Error(`non-integer number ${v}: wrap floats in GoFloat`);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(element).join(', ')}]`;
  if (isMap(v)) return inlineMap(v);
  throw new Error(`cannot encode ${String(v)} as TOML`);
}

const isNil = (v: unknown): boolean => v === null || v === undefined;
const isTable = (v: unknown): boolean => isMap(v) || (Array.isArray(v) && v.length > 0 && v.every(isMap));
const byGoString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function inlineMap(m: GoMap): string {
  const direct = Object.keys(m).filter((k) => !isTable(m[k])).sort(byGoString);
  const sub = Object.keys(m).filter((k) => isTable(m[k])).sort(byGoString);
  const parts: string[] = [];
  const write = (keys: string[], trail: boolean): void => {
    keys.forEach((k, i) => {
      if (isNil(m[k])) return;
      parts.push(`${keyPart(k)} = ${element(m[k])}${trail || i !== keys.length - 1 ? ', ' : ''}`);
    });
  };
  write(direct, sub.length > 0);
  write(sub, false);
  return `{${parts.join('')}}`;
}

class Writer {
  out = '';
  private written = false;
  wf(s: string): void {
    this.out += s;
    this.written = true;
  }
  newline(): void {
    if (this.written) this.wf('\n');
  }
}

/** encode.go eMap (not inline): direct keys first, then tables, each group sorted. */
function eMap(w: Writer, key: string[], m: GoMap): void {
  const direct = Object.keys(m).filter((k) => !isTable(m[k])).sort(byGoString);
  const sub = Object.keys(m).filter((k) => isTable(m[k])).sort(byGoString);
  for (const k of [...direct, ...sub]) if (!isNil(m[k])) encode(w, [...key, k], m[k]);
}

function encode(w: Writer, key: string[], v: unknown): void {
  if (isMap(v)) {
    // eTable: a blank line only before top-level tables; every table gets its header, even one
    // that holds nothing but sub-tables.
    if (key.length === 1) w.newline();
    if (key.length > 0) {
      w.wf(`[${key.map(keyPart).join('.')}]`);
      w.newline();
    }
    eMap(w, key, v);
  } else if (Array.isArray(v) && isTable(v)) {
    for (const t of v as GoMap[]) {
      w.newline();
      w.wf(`[[${key.map(keyPart).join('.')}]]`);
      w.newline();
      eMap(w, key, t);
    }
  } else {
    w.wf(`${keyPart(key[key.length - 1])} = ${element(v)}`);
    w.newline();
  }
}

/** BurntSushi/toml Encoder.Encode of a folded map. */
export function encodeToml(m: GoMap): string {
  const w = new Writer();
  encode(w, [], m);
  return w.out;
}

/** server_config.go Merge2Toml: TiUP's header (written straight to the buffer) + the encoded merge. */
export function merge2Toml(comp: string, global: GoMap | undefined, overwrite: GoMap | undefined): string {
  return (
    '# WARNING: This file is auto-generated. Do not edit! All your modification will be overwritten!\n' +
    "# You can use 'tiup cluster edit-config' and 'tiup cluster reload' to update the configuration\n" +
    '# All configuration items you want to change can be added to:\n' +
    '# server_configs:\n' +
    `#   ${comp}:\n` +
    '#     aa.b1.c3: value\n' +
    '#     aa.b2.c4: value\n' +
    encodeToml(mergeConfig(global, overwrite))
  );
}
