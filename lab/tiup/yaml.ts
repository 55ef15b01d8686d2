/**
 * meta.yaml as TiUP's Go YAML decoder (gopkg.in/yaml.v3 into map[string]any) types it: a plain
 * scalar that resolves as a float stays a float even when it is whole (`5.0`), so the TOML writer can
 * print it the way BurntSushi/toml does (`5.0`, not `5`). JavaScript numbers cannot tell 5.0 from 5.
 */
import * as yaml from 'js-yaml';

/** A YAML float (Go float64). */
export class GoFloat {
  constructor(readonly value: number) {}
}

// yaml.v3 resolve.go: the YAML 1.2 core float forms (ints are tried first, as in js-yaml's core schema).
const FLOAT = /^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/;
const INF = /^[-+]?\.(inf|Inf|INF)$/;
const NAN = /^\.(nan|NaN|NAN)$/;

const goFloat = new yaml.Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (s: string | null) => s !== null && (FLOAT.test(s) || INF.test(s) || NAN.test(s)),
  construct: (s: string) => {
    if (NAN.test(s)) return new GoFloat(NaN);
    if (INF.test(s)) return new GoFloat(s.startsWith('-') ? -Infinity : Infinity);
    return new GoFloat(Number(s));
  },
  instanceOf: GoFloat,
  represent: (f: object) => String((f as GoFloat).value),
});

/** CORE schema (no YAML 1.1 timestamps or `on`/`yes` booleans, like yaml.v3 into `any`), floats kept as floats. */
export const GO_SCHEMA = yaml.CORE_SCHEMA.extend({ implicit: [goFloat] });

export function parseGoYaml(text: string): unknown {
  return yaml.load(text, { schema: GO_SCHEMA });
}
