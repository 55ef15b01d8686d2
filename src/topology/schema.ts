/**
 * Field-level checks with source positions: types as TiUP's Go structs (yaml.v2) accept them,
 * and unknown keys (TiUP's UnmarshalStrict rejects them; we warn and suggest the nearest key).
 */
import type { TopologyProblem } from '../errors';
import { RESOURCE_CONTROL_FIELDS, type FieldType } from './roles';
import { closest } from './suggest';
import type { LoadedYaml, Pos, PosNode } from './yaml-positions';

export class Problems {
  readonly list: TopologyProblem[] = [];
  constructor(
    readonly file: string,
    readonly yaml?: LoadedYaml,
  ) {}

  at(node: PosNode | undefined, fallback?: PosNode): Pos {
    const n = node ?? fallback;
    return n && this.yaml ? this.yaml.pos(n.start) : { line: 1, column: 1 };
  }

  error(where: Pos, message: string, suggestion?: string): void {
    this.list.push({ file: this.file, ...where, severity: 'error', message, ...(suggestion ? { suggestion } : {}) });
  }

  warn(where: Pos, message: string, suggestion?: string): void {
    this.list.push({ file: this.file, ...where, severity: 'warning', message, ...(suggestion ? { suggestion } : {}) });
  }

  get hasErrors(): boolean {
    return this.list.some((p) => p.severity === 'error');
  }

  /** `file:line:col` of a position, for messages that point at a second place. */
  ref(where: Pos): string {
    return `${this.file}:${where.line}:${where.column}`;
  }
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Date) return `a timestamp (${v.toISOString()})`;
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

// yaml.v2 resolves these plain scalars to booleans (YAML 1.1); js-yaml 4 (YAML 1.2) does not.
const YAML11_TRUE = new Set(['y', 'yes', 'on', 'true']);
const YAML11_FALSE = new Set(['n', 'no', 'off', 'false']);

function isQuoted(src: string): boolean {
  return src.startsWith('"') || src.startsWith("'");
}

/**
 * Check one value against its field type. Returns the value as TiUP would read it, or
 * `undefined` for null/absent values and for values that failed (a problem is recorded).
 */
export function checkValue(
  p: Problems,
  type: FieldType,
  value: unknown,
  node: PosNode | undefined,
  fallback: PosNode | undefined,
  path: string,
): unknown {
  // yaml.v2 leaves the zero value for nulls; callers apply TiUP's defaults to undefined.
  if (value === null || value === undefined) return undefined;
  const where = p.at(node, fallback);
  const src = node && p.yaml ? p.yaml.source(node) : String(value);
  switch (type) {
    case 'string':
      if (typeof value === 'string') {
        // No topology value is more than one line: a line break would end a unit file line or a script command.
        if (/[\u0000-\u001f\u007f]/.test(value)) {
          p.error(where, `${path} contains a control character (line break, tab or similar): ${JSON.stringify(value)}`, 'write the value on one line, without control characters');
          return undefined;
        }
        return value;
      }
      // Go's yaml.v2 stores any scalar's text in a string field (numa_node: 0, host: 1.2).
      if (typeof value === 'number' || typeof value === 'boolean' || value instanceof Date) return src;
      p.error(where, `${path} must be a string, got ${describe(value)}`);
      return undefined;
    case 'int':
      if (typeof value === 'number' && Number.isInteger(value)) return value;
      p.error(
        where,
        `${path} must be an integer, got ${describe(value)}`,
        typeof value === 'string' && /^\d+$/.test(value) ? `write it without quotes: ${path.split('.').pop()}: ${value}` : undefined,
      );
      return undefined;
    case 'bool':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && !isQuoted(src)) {
        const w = value.toLowerCase();
        if (YAML11_TRUE.has(w)) return true;
        if (YAML11_FALSE.has(w)) return false;
      }
      p.error(where, `${path} must be true or false, got ${describe(value)}`);
      return undefined;
    case 'map':
    case 'resource':
      if (isPlainObject(value)) return value;
      p.error(where, `${path} must be a mapping, got ${describe(value)}`);
      return undefined;
    case 'stringMap': {
      if (!isPlainObject(value)) {
        p.error(where, `${path} must be a mapping of strings, got ${describe(value)}`);
        return undefined;
      }
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(value)) {
        const vn = node?.entries?.get(k)?.value;
        const s = checkValue(p, 'string', v, vn, node, `${path}.${k}`);
        if (typeof s === 'string') out[k] = s;
      }
      return out;
    }
    case 'list':
      if (Array.isArray(value)) return value;
      p.error(where, `${path} must be a list, got ${describe(value)}`);
      return undefined;
    case 'any':
      return value;
  }
}

/**
 * Check every key of a mapping: unknown keys are warnings with a suggestion, known ones are
 * type-checked. Returns the accepted values (nulls dropped).
 */
export function checkFields(
  p: Problems,
  obj: Record<string, unknown>,
  node: PosNode | undefined,
  fields: Record<string, FieldType>,
  path: string,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(obj)) {
    const entry = node?.entries?.get(key);
    const type = fields[key];
    if (!type) {
      const guess = closest(key, Object.keys(fields));
      p.warn(
        p.at(entry?.key, node),
        `unknown field "${key}" in ${path}`,
        guess ? `did you mean "${guess}"?` : `remove it: ${path.replace(/\[\d+\]$/, ' entries')} ${path.endsWith(']') ? 'have' : 'has'} no ${key} (TiUP rejects unknown fields)`,
      );
      continue;
    }
    const checked = checkValue(p, type, value, entry?.value, entry?.key ?? node, `${path}.${key}`);
    if (checked === undefined) continue;
    if (type === 'resource' && isPlainObject(checked)) {
      out[key] = checkFields(p, checked, entry?.value, RESOURCE_CONTROL_FIELDS, `${path}.${key}`);
    } else {
      out[key] = checked;
    }
  }
  return out;
}

/** A section that must be a mapping (or absent/null). */
export function sectionMapping(
  p: Problems,
  root: Record<string, unknown>,
  rootNode: PosNode | undefined,
  key: string,
): { obj: Record<string, unknown>; node?: PosNode } | undefined {
  const value = root[key];
  const entry = rootNode?.entries?.get(key);
  if (value === undefined || value === null) return { obj: {}, node: entry?.value };
  if (!isPlainObject(value)) {
    p.error(p.at(entry?.value, entry?.key), `${key} must be a mapping, got ${describe(value)}`);
    return undefined;
  }
  return { obj: value, node: entry?.value };
}

export { describe };
