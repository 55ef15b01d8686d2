/**
 * Command-line parsing in the three dialects the real binaries use, so a wrong flag fails the
 * way the real component fails:
 * - `pflag` (cobra; pd-server v8, cdc): `--name=v`, `--name v`, `-V`; unknown → "Error: unknown flag: --x", exit 1.
 * - `goflag` (Go's flag package; tidb-server): `-name v`, `--name=v`; unknown → "flag provided but not defined: -x", exit 2.
 * - `clap` (clap 2; tikv-server): `--name v`, `--name=v`, `-C v`; unknown → "error: Found argument '--x' which wasn't expected…", exit 1.
 */
export type FlagDialect = 'pflag' | 'goflag' | 'clap';

export interface FlagSpec {
  name: string;
  short?: string;
  aliases?: string[];
  bool?: boolean;
}

export interface ParsedFlags {
  values: Map<string, string | true>;
  positional: string[];
}

export class FlagError extends Error {
  constructor(message: string, readonly exitCode: number) {
    super(message);
  }
}

function unknownFlag(dialect: FlagDialect, arg: string, binary: string): FlagError {
  const flag = arg.split('=')[0];
  switch (dialect) {
    case 'pflag':
      if (!flag.startsWith('--')) {
        return new FlagError(`Error: unknown shorthand flag: '${flag.slice(1, 2)}' in ${flag}`, 1);
      }
      return new FlagError(`Error: unknown flag: ${flag}`, 1);
    case 'goflag':
      return new FlagError(`flag provided but not defined: ${flag.replace(/^--/, '-')}\nUsage of ${binary}:`, 2);
    case 'clap':
      return new FlagError(
        `error: Found argument '${flag}' which wasn't expected, or isn't valid in this context\n\n` +
          `USAGE:\n    ${binary} [FLAGS] [OPTIONS]\n\nFor more information try --help`,
        1,
      );
  }
}

function missingValue(dialect: FlagDialect, flag: string, binary: string): FlagError {
  switch (dialect) {
    case 'pflag':
      return new FlagError(`Error: flag needs an argument: ${flag}`, 1);
    case 'goflag':
      return new FlagError(`flag needs an argument: ${flag.replace(/^--/, '-')}\nUsage of ${binary}:`, 2);
    case 'clap':
      return new FlagError(
        `error: The argument '${flag} <${flag.replace(/^-+/, '')}>' requires a value but none was supplied\n\n` +
          `USAGE:\n    ${binary} [FLAGS] [OPTIONS]\n\nFor more information try --help`,
        1,
      );
  }
}

export function parseFlags(argv: string[], specs: FlagSpec[], dialect: FlagDialect, binary: string): ParsedFlags {
  const byLong = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const s of specs) {
    byLong.set(s.name, s);
    for (const a of s.aliases ?? []) byLong.set(a, s);
    if (s.short) byShort.set(s.short, s);
  }
  const values = new Map<string, string | true>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (dialect === 'goflag') {
        // Go's flag package stops at the first non-flag argument.
        positional.push(...argv.slice(i));
        break;
      }
      positional.push(arg);
      continue;
    }
    const isLong = arg.startsWith('--');
    const body = arg.slice(isLong ? 2 : 1);
    const eq = body.indexOf('=');
    const key = eq >= 0 ? body.slice(0, eq) : body;
    let spec: FlagSpec | undefined;
    if (isLong || dialect === 'goflag') spec = byLong.get(key) ?? (dialect === 'goflag' ? byShort.get(key) : undefined);
    else spec = byShort.get(key.slice(0, 1));
    if (!spec) throw unknownFlag(dialect, arg, binary);
    const shortInline = !isLong && dialect !== 'goflag' && key.length > 1 ? key.slice(1) : undefined;
    if (spec.bool) {
      if (eq >= 0) values.set(spec.name, body.slice(eq + 1) === 'false' ? 'false' : true);
      else values.set(spec.name, true);
      continue;
    }
    if (eq >= 0) {
      values.set(spec.name, body.slice(eq + 1));
    } else if (shortInline !== undefined) {
      values.set(spec.name, shortInline);
    } else {
      if (i + 1 >= argv.length) throw missingValue(dialect, isLong ? `--${key}` : `-${key}`, binary);
      values.set(spec.name, argv[++i]);
    }
  }
  return { values, positional };
}

export function flagString(f: ParsedFlags, name: string): string | undefined {
  const v = f.values.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flagBool(f: ParsedFlags, name: string): boolean {
  const v = f.values.get(name);
  return v === true || v === 'true';
}
