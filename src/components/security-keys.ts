import type { Instance, Role } from '../topology/types';
import type { TlsPaths } from './tls-paths';

/**
 * The TLS keys each component reads, per config file (component-security.md §1). A config is
 * patched by setting these keys (enable) or deleting them (disable); everything else in the file
 * is left as the operator wrote it.
 */
export type TomlTable = { [key: string]: unknown };

export interface TlsSettings {
  paths: TlsPaths;
  /** CN allow-list for callers (`--verify-cn`); undefined = no CN check. */
  allowedCn?: string[];
}

interface KeyNames {
  /** Dotted table path where the keys live. */
  table: string[];
  ca: string;
  cert: string;
  key: string;
  /** CN allow-list key name, when the component has one in this file. */
  allowedCn?: string;
  /** `string` for components that take one CN (PD < v8.4 is handled by the caller passing one). */
}

const dashed = (table: string[], allowedCn = 'cert-allowed-cn'): KeyNames => ({ table, ca: 'ca-path', cert: 'cert-path', key: 'key-path', allowedCn });

/** conf file base name → key names, per role. */
const KEYS: Partial<Record<Role, Record<string, KeyNames>>> = {
  pd: { 'pd.toml': { table: ['security'], ca: 'cacert-path', cert: 'cert-path', key: 'key-path', allowedCn: 'cert-allowed-cn' } },
  tikv: { 'tikv.toml': dashed(['security']) },
  tidb: { 'tidb.toml': { table: ['security'], ca: 'cluster-ssl-ca', cert: 'cluster-ssl-cert', key: 'cluster-ssl-key', allowedCn: 'cluster-verify-cn' } },
  tiflash: {
    'tiflash.toml': { table: ['security'], ca: 'ca_path', cert: 'cert_path', key: 'key_path', allowedCn: 'cert_allowed_cn' },
    'tiflash-learner.toml': dashed(['security']),
  },
  tiproxy: { 'tiproxy.toml': { table: ['security', 'cluster-tls'], ca: 'ca', cert: 'cert', key: 'key' } },
  pump: { 'pump.toml': { table: ['security'], ca: 'ssl-ca', cert: 'ssl-cert', key: 'ssl-key', allowedCn: 'cert-allowed-cn' } },
  drainer: { 'drainer.toml': { table: ['security'], ca: 'ssl-ca', cert: 'ssl-cert', key: 'ssl-key', allowedCn: 'cert-allowed-cn' } },
  // TiUP passes --ca/--cert/--key in run_cdc.sh (render/ keeps doing that); cdc.toml (v4.0.13+)
  // carries the same paths and is where the CN allow-list lives.
  cdc: { 'cdc.toml': dashed(['security']) },
};

export function securityKeyNames(role: Role, fileBase: string): KeyNames | undefined {
  return KEYS[role]?.[fileBase];
}

/** Config files of an instance that carry TLS keys. */
export function tlsConfigFiles(inst: Instance): string[] {
  const known = KEYS[inst.role] ?? {};
  return inst.configFiles.filter((f) => known[f.split('/').pop() as string] !== undefined);
}

function tableAt(doc: TomlTable, table: string[], create: boolean): TomlTable | undefined {
  let cur: TomlTable = doc;
  for (const part of table) {
    const next = cur[part];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) {
      if (!create) return undefined;
      cur[part] = {};
    }
    cur = cur[part] as TomlTable;
  }
  return cur;
}

/** Remove now-empty tables left behind by a disable, so the file looks as it did before enable. */
function pruneEmpty(doc: TomlTable, table: string[]): void {
  for (let depth = table.length; depth > 0; depth--) {
    const parent = depth === 1 ? doc : tableAt(doc, table.slice(0, depth - 1), false);
    const name = table[depth - 1];
    const t = parent?.[name];
    if (parent && t && typeof t === 'object' && !Array.isArray(t) && Object.keys(t as object).length === 0) delete parent[name];
  }
}

/**
 * Set (settings given) or remove (null) a component's TLS keys in a parsed config. Returns true
 * when the document changed. Pure: mutates only `doc`.
 */
export function applyTlsKeys(role: Role, fileBase: string, doc: TomlTable, settings: TlsSettings | null): boolean {
  const names = securityKeyNames(role, fileBase);
  if (!names) return false;
  const before = JSON.stringify(doc);
  if (settings) {
    const t = tableAt(doc, names.table, true) as TomlTable;
    t[names.ca] = settings.paths.ca;
    t[names.cert] = settings.paths.cert;
    t[names.key] = settings.paths.key;
    if (names.allowedCn) {
      if (settings.allowedCn && settings.allowedCn.length > 0) t[names.allowedCn] = [...settings.allowedCn];
      else delete t[names.allowedCn];
    }
  } else {
    const t = tableAt(doc, names.table, false);
    if (t) {
      for (const k of [names.ca, names.cert, names.key, names.allowedCn]) if (k) delete t[k];
      pruneEmpty(doc, names.table);
    }
  }
  return JSON.stringify(doc) !== before;
}

/** What a parsed config says about TLS: all three paths set, none, or a partial (broken) state. */
export function readTlsKeys(role: Role, fileBase: string, doc: TomlTable): { state: 'on' | 'off' | 'partial'; ca?: string; cert?: string; key?: string; allowedCn?: string[] } {
  const names = securityKeyNames(role, fileBase);
  if (!names) return { state: 'off' };
  const t = tableAt(doc, names.table, false) ?? {};
  const val = (k: string) => (typeof t[k] === 'string' && (t[k] as string) !== '' ? (t[k] as string) : undefined);
  const ca = val(names.ca), cert = val(names.cert), key = val(names.key);
  const set = [ca, cert, key].filter(Boolean).length;
  const cn = names.allowedCn ? t[names.allowedCn] : undefined;
  const allowedCn = Array.isArray(cn) ? cn.map(String) : typeof cn === 'string' && cn ? [cn] : undefined;
  return { state: set === 3 ? 'on' : set === 0 ? 'off' : 'partial', ca, cert, key, allowedCn };
}
