/**
 * PD returns member_id / cluster_id as raw uint64 JSON numbers above 2^53, which JSON.parse
 * silently rounds. Integers that do not fit a double exactly are turned into decimal strings
 * before parsing; everything else parses as usual.
 */
export function parseLosslessJson<T = unknown>(text: string): T {
  let out = '';
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i];
    if (c === '"') {
      // Copy a whole string literal, honouring escapes.
      let j = i + 1;
      while (j < n && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1;
      while (j < n && /[0-9eE.+-]/.test(text[j])) j++;
      const num = text.slice(i, j);
      out += /^-?\d+$/.test(num) && !Number.isSafeInteger(Number(num)) ? `"${num}"` : num;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return JSON.parse(out) as T;
}
