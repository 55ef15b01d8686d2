import * as fs from 'fs';
import * as TOML from '@iarna/toml';

/**
 * TOML loading and the strictness helpers every emulator needs: which keys the real component
 * does not know (it warns or refuses, per component), and type-checked getters whose errors name
 * the key the way serde/BurntSushi do.
 */
export type Table = Record<string, unknown>;

/** `true` = known leaf (any value); a nested Schema = known table checked recursively; `'any'` = free-form table. */
export type Schema = { [key: string]: true | 'any' | Schema };

export class ConfigError extends Error {}

export function loadTomlFile(file: string): Table {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`open ${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
  }
  try {
    return TOML.parse(text) as Table;
  } catch (e) {
    const err = e as Error & { line?: number; col?: number };
    const where = err.line !== undefined ? ` (line ${err.line + 1}, column ${(err.col ?? 0) + 1})` : '';
    throw new ConfigError(`toml: ${err.message.split('\n')[0]}${where}`);
  }
}

export function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Every dotted key under an unknown table, the table first (as BurntSushi's MetaData.Undecoded lists them). */
function allKeys(obj: Table, prefix: string): string[] {
  return Object.entries(obj).flatMap(([k, v]) => [`${prefix}.${k}`, ...(isTable(v) ? allKeys(v, `${prefix}.${k}`) : [])]);
}

/** Dotted paths of keys that are not in the schema (only descends into known tables). */
export function unknownKeys(obj: Table, schema: Schema, prefix = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    const s = schema[k];
    const p = prefix ? `${prefix}.${k}` : k;
    if (s === undefined) out.push(p, ...(isTable(v) ? allKeys(v, p) : []));
    else if (typeof s === 'object' && isTable(v)) out.push(...unknownKeys(v, s, p));
  }
  return out;
}

export function lookup(obj: Table, dotted: string): unknown {
  let cur: unknown = obj;
  for (const part of dotted.split('.')) {
    if (!isTable(cur)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'a sequence';
  if (isTable(v)) return 'a map';
  if (typeof v === 'bigint' || typeof v === 'number') return `integer \`${String(v)}\``;
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (typeof v === 'boolean') return `boolean \`${v}\``;
  return typeof v;
}

/** serde-style type error, as TiKV prints when a key has the wrong type. */
export function typeError(key: string, v: unknown, expected: string): ConfigError {
  return new ConfigError(`invalid type: ${typeName(v)}, expected ${expected} for key \`${key}\``);
}

export function getString(obj: Table, key: string): string | undefined {
  const v = lookup(obj, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw typeError(key, v, 'a string');
  return v;
}

export function getNumber(obj: Table, key: string): number | undefined {
  const v = lookup(obj, key);
  if (v === undefined) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  throw typeError(key, v, 'an integer');
}

export function getBool(obj: Table, key: string): boolean | undefined {
  const v = lookup(obj, key);
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw typeError(key, v, 'a boolean');
  return v;
}

export function getStringArray(obj: Table, key: string): string[] | undefined {
  const v = lookup(obj, key);
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw typeError(key, v, 'a sequence of strings');
  return v as string[];
}

export function getTable(obj: Table, key: string): Table | undefined {
  const v = lookup(obj, key);
  if (v === undefined) return undefined;
  if (!isTable(v)) throw typeError(key, v, 'a map');
  return v;
}

/** Go duration text ("30m", "1h30m", "20s", "500ms") to milliseconds. */
export function parseGoDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 };
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * units[m[2]];
    consumed += m[0].length;
  }
  if (!text || consumed !== text.length) throw new ConfigError(`time: invalid duration "${text}"`);
  return total;
}

/** Go's time.Duration String() for whole milliseconds ("30m0s", "1h0m0s", "20s"). */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3600000);
  const m = Math.floor((ms % 3600000) / 60000);
  const s = (ms % 60000) / 1000;
  if (h) return `${h}h${m}m${s}s`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}
