import { versionAtLeast } from '../util/version';
import { openSqlSession, SqlCredentials, SqlTarget } from './session';

/** TiDB's refusal of a plaintext login under require_secure_transport (ER_SECURE_TRANSPORT_REQUIRED). */
export const SECURE_TRANSPORT_REQUIRED = 3159;

/**
 * From v6.1 `require_secure_transport` is a GLOBAL system variable persisted to the cluster and
 * applied on every TiDB; tidb.toml's `security.require-secure-transport` is on TiDB's
 * `removedConfig` and does nothing (docs system-variables.md; pkg/config/config.go).
 */
export const REQUIRE_SYSVAR_FROM: [number, number, number] = [6, 1, 0];

/** Whether `version` (e.g. "v8.5.1"; unknown counts as current) keeps require only as that variable. */
export const requireIsSysvar = (version: string | undefined) => versionAtLeast(version, REQUIRE_SYSVAR_FROM) !== false;

/** "8.0.11-TiDB-v8.5.1" (SELECT @@version) → "v8.5.1". */
export function tidbVersionOf(atVersion: unknown): string | undefined {
  return /-TiDB-(v\d+\.\d+\.\d+)/.exec(String(atVersion ?? ''))?.[1];
}

export interface LiveRequire {
  /** What this TiDB applies now. */
  on: boolean;
  /** The TiDB release, when the session got as far as asking. */
  version?: string;
}

const isOn = (v: unknown) => /^(1|ON|true)$/i.test(String(v ?? ''));
const firstValue = (rows: Array<Record<string, unknown>>) => Object.values(rows[0] ?? {})[0];

/**
 * `SELECT @@global.require_secure_transport` (and `@@version`) on one TiDB. A plaintext login refused
 * with 3159 is an answer too: only require_secure_transport = ON refuses it so. Other errors throw.
 */
export async function readLiveRequire(target: SqlTarget, creds: SqlCredentials): Promise<LiveRequire> {
  let s;
  try {
    s = await openSqlSession(target, creds);
  } catch (e) {
    if (!target.tls && (e as { errno?: number }).errno === SECURE_TRANSPORT_REQUIRED) return { on: true };
    throw e;
  }
  try {
    const on = isOn(firstValue(await s.query('SELECT @@global.require_secure_transport')));
    return { on, version: tidbVersionOf(firstValue(await s.query('SELECT @@version'))) };
  } finally {
    await s.close();
  }
}
