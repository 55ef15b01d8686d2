/**
 * The part of JSON Schema our documented schemas use (type, enum, required, properties, items),
 * enough to hold `--json` output to its documentation. Returns every violation with its path.
 */
type Schema = { type?: string; enum?: unknown[]; required?: string[]; properties?: Record<string, Schema>; items?: Schema };

export function validate(schema: Schema, value: unknown, at = '$'): string[] {
  const errors: string[] = [];
  if (schema.enum && !schema.enum.includes(value)) errors.push(`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(schema.enum)}`);
  if (schema.type) {
    const t = Array.isArray(value) ? 'array' : value === null ? 'null' : typeof value;
    if (t !== schema.type) return [...errors, `${at}: expected ${schema.type}, got ${t}`];
  }
  if (schema.required && value && typeof value === 'object') {
    for (const k of schema.required) if (!(k in (value as object))) errors.push(`${at}: missing ${k}`);
  }
  if (schema.properties && value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, sub] of Object.entries(schema.properties)) {
      const v = (value as Record<string, unknown>)[k];
      if (v !== undefined) errors.push(...validate(sub, v, `${at}.${k}`));
    }
  }
  if (schema.items && Array.isArray(value)) value.forEach((v, i) => errors.push(...validate(schema.items!, v, `${at}[${i}]`)));
  return errors;
}
