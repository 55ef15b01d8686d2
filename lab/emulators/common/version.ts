/** The component version an emulator pretends to be (TISEAL_EMULATED_VERSION, default v8.5.1). */
export const DEFAULT_EMULATED_VERSION = 'v8.5.1';

/** A fixed, recognisable build identity: the branch names the emulator so nobody mistakes it for a real build. */
export const EMULATOR_GIT_HASH = '0000000000000000000000000000000000e30a7e';
export const EMULATOR_GIT_BRANCH = 'tiseal-emulator';
export const EMULATOR_BUILD_TS = '2025-01-01 00:00:00';

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** Always with the leading "v", e.g. "v8.5.1". */
  text: string;
}

export function parseVersion(raw: string): Version {
  const m = /^v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/.exec(raw.trim());
  if (!m) throw new Error(`invalid emulated version "${raw}" (expected vX.Y.Z)`);
  const [major, minor, patch] = [Number(m[1]), Number(m[2]), Number(m[3])];
  return { major, minor, patch, text: `v${major}.${minor}.${patch}` };
}

export function emulatedVersion(env: NodeJS.ProcessEnv = process.env): Version {
  return parseVersion(env.TISEAL_EMULATED_VERSION || DEFAULT_EMULATED_VERSION);
}

/** True when `v` >= `min` (min written like "v8.4.0"). */
export function versionAtLeast(v: Version, min: string): boolean {
  const o = parseVersion(min);
  if (v.major !== o.major) return v.major > o.major;
  if (v.minor !== o.minor) return v.minor > o.minor;
  return v.patch >= o.patch;
}

/** The version without "v", as TiKV reports it to PD ("8.5.1"). */
export function bareVersion(v: Version): string {
  return v.text.slice(1);
}
