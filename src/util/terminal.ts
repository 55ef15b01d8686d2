/**
 * Text from hosts (stderr, log tails, file contents in diffs) reaches the operator's terminal.
 * A deploy user controls it: escape sequences could rewrite the screen (erase a line, move the
 * cursor, retitle the window) and a line of its own could pass for tiseal's `error:` or
 * `suggestion:`. Control characters are shown as `\xHH` (tab and, where allowed, newline kept).
 */
// C0 controls but tab/newline, DEL, and C1 controls (U+0080–U+009F: 8-bit CSI and friends).
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
const CONTROL_AND_NEWLINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

export function terminalSafe(text: string, opts: { newlines?: boolean } = {}): string {
  const hex = (c: string) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
  return text.replace(opts.newlines === false ? CONTROL_AND_NEWLINE : CONTROL, hex);
}

/** A message for the terminal: control characters shown, every line after the first indented (no line of it can pass for a line of tiseal's). */
export function terminalMessage(text: string, indent = '  '): string {
  return terminalSafe(text)
    .split('\n')
    .map((l, i) => (i === 0 || l === '' ? l : `${indent}${l}`))
    .join('\n');
}
