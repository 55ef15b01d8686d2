/**
 * TiUP's config merge (pkg/cluster/spec/server_config.go: FlattenMap, FoldMap, MergeConfig) and a
 * deterministic TOML writer in the style of the BurntSushi encoder TiUP uses (sorted keys, values
 * before tables, no indentation).
 */

export type ConfigMap = Record<string, unknown>;

function isPlainObject(v: unknown): v is ConfigMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** `{a: {b: 1}, "c.d": 2}` → `{"a.b": 1, "c.d": 2}` */
export function flattenMap(m: ConfigMap): ConfigMap {
  const out: ConfigMap = {};
  for (const [k, v] of Object.entries(m)) {
    if (isPlainObject(v)) {
      for (const [sk, sv] of Object.entries(flattenMap(v))) out[`${k}.${sk}`] = sv;
    } else out[k] = v;
  }
  return out;
}

function patch(origin: ConfigMap, key: string, val: unknown): void {
  const cur = origin[key];
  if (isPlainObject(cur) && isPlainObject(val)) {
    for (const [k, v] of Object.entries(val)) patch(cur, k, v);
  } else {
    origin[key] = isPlainObject(val) ? foldMap(val) : val;
  }
}

function foldKey(key: string, val: unknown): [string, unknown] {
  const dot = key.indexOf('.');
  if (dot < 0) return [key, val];
  const [sub, subVal] = foldKey(key.slice(dot + 1), val);
  return [key.slice(0, dot), { [sub]: subVal }];
}

/** Dotted keys become nested tables: `{"schedule.max-store-down-time": "30m"}` → `{schedule: {"max-store-down-time": "30m"}}`. */
export function foldMap(m: ConfigMap): ConfigMap {
  const out: ConfigMap = {};
  for (const [k, v] of Object.entries(flattenMap(m))) {
    const [key, val] = foldKey(k, v);
    patch(out, key, val);
  }
  return out;
}

/** Later maps override earlier ones key by key (nested tables merge, other values replace). */
export function mergeConfig(...maps: Array<ConfigMap | undefined>): ConfigMap {
  const out: ConfigMap = {};
  for (const m of maps) {
    if (!m) continue;
    for (const [k, v] of Object.entries(foldMap(m))) patch(out, k, v);
  }
  return out;
}

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

function tomlKey(k: string): string {
  return BARE_KEY.test(k) ? k : tomlString(k);
}

export function tomlString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += ch;
  }
  return out + '"';
}

function tomlValue(v: unknown, where: string): string {
  if (typeof v === 'string') return tomlString(v);
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return Number.isNaN(v) ? 'nan' : v > 0 ? 'inf' : '-inf';
    return Number.isInteger(v) ? String(v) : String(v);
  }
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return `[${v.map((x, i) => tomlValue(x, `${where}[${i}]`)).join(', ')}]`;
  if (isPlainObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${tomlKey(k)} = ${tomlValue(v[k], `${where}.${k}`)}`)
      .join(', ')}}`;
  }
  throw new Error(`cannot write ${where} (${v === null ? 'null' : typeof v}) as TOML`);
}

const isTableArray = (v: unknown): v is ConfigMap[] => Array.isArray(v) && v.length > 0 && v.every(isPlainObject);

function writeTable(lines: string[], pathKeys: string[], table: ConfigMap, header: 'table' | 'array' | 'none'): void {
  const keys = Object.keys(table).sort();
  const values = keys.filter((k) => table[k] !== null && table[k] !== undefined && !isPlainObject(table[k]) && !isTableArray(table[k]));
  const tables = keys.filter((k) => isPlainObject(table[k]));
  const arrays = keys.filter((k) => isTableArray(table[k]));
  const name = pathKeys.map(tomlKey).join('.');
  // Like a hand-written file: no empty `[a]` header when `a` only holds sub-tables.
  const onlySubtables = header === 'table' && values.length === 0 && (tables.length > 0 || arrays.length > 0);
  if (header !== 'none' && !onlySubtables) {
    if (lines.length > 0) lines.push('');
    lines.push(header === 'array' ? `[[${name}]]` : `[${name}]`);
  }
  for (const k of values) lines.push(`${tomlKey(k)} = ${tomlValue(table[k], [...pathKeys, k].join('.'))}`);
  for (const k of tables) writeTable(lines, [...pathKeys, k], table[k] as ConfigMap, 'table');
  for (const k of arrays) for (const item of table[k] as ConfigMap[]) writeTable(lines, [...pathKeys, k], item, 'array');
}

/** Serialise a (nested) map as TOML. `null`/`undefined` values are left out. */
export function stringifyToml(m: ConfigMap): string {
  const lines: string[] = [];
  writeTable(lines, [], m, 'none');
  return lines.length ? lines.join('\n') + '\n' : '';
}

/** TiUP's header above every generated config (spec.Merge2Toml). */
export function tiupConfigHeader(component: string): string {
  return [
    '# WARNING: This file is auto-generated. Do not edit! All your modification will be overwritten!',
    "# You can use 'tiup cluster edit-config' and 'tiup cluster reload' to update the configuration",
    '# All configuration items you want to change can be added to:',
    '# server_configs:',
    `#   ${component}:`,
    '#     aa.b1.c3: value',
    '#     aa.b2.c4: value',
    '',
  ].join('\n');
}

/** spec.Merge2Toml: header + merged config. */
export function mergeToToml(component: string, ...maps: Array<ConfigMap | undefined>): string {
  const merged = mergeConfig(...maps);
  const body = stringifyToml(merged);
  return tiupConfigHeader(component) + (body ? '\n' + body : '');
}
