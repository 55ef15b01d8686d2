/** POSIX single-quote quoting: safe for any byte string, so topology values never reach a shell unquoted. */
export function shq(value: string | number): string {
  const s = String(value);
  if (s !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Join argv into one shell command line, each argument quoted. */
export function shellJoin(argv: Array<string | number>): string {
  return argv.map(shq).join(' ');
}
