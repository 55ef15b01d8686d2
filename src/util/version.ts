/** `v8.5.1` / `8.5.1-alpha` → [8, 5, 1]; undefined when there is no x.y.z in it. */
export function parseVersion(v: string | undefined): [number, number, number] | undefined {
  const m = /(\d+)\.(\d+)\.(\d+)/.exec(v ?? '');
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/** true / false, or undefined when the version is unknown (callers decide what unknown means). */
export function versionAtLeast(v: string | undefined, min: [number, number, number]): boolean | undefined {
  const got = parseVersion(v);
  if (!got) return undefined;
  for (let i = 0; i < 3; i++) if (got[i] !== min[i]) return got[i] > min[i];
  return true;
}
