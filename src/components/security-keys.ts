import type { Instance, Role } from '../topology/types';
import * as TOML from '@iarna/toml';
import { versionAtLeast } from '../util/version';
import { editTomlText } from './toml-text';
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
  /**
   * Disable writes the paths as "" instead of deleting them: TiUP renders tiflash-learner.toml with
   * `security.ca-path/cert-path/key-path = ""` when TLS is off (pkg/cluster/spec/tiflash.go,
   * InitTiFlashLearnerConfig), so this gives a TiUP-deployed file back byte for byte.
   */
  emptyWhenOff?: boolean;
  /**
   * The file exists only when the feature is deployed (ng-monitoring: TiUP writes it only with
   * ng_port > 0, from v5.4.0 by default): a missing or empty one is left alone, never created.
   */
  optionalFile?: boolean;
}

const dashed = (table: string[], allowedCn = 'cert-allowed-cn'): KeyNames => ({ table, ca: 'ca-path', cert: 'cert-path', key: 'key-path', allowedCn });

/** conf file base name → key names, per role. */
const KEYS: Partial<Record<Role, Record<string, KeyNames>>> = {
  pd: { 'pd.toml': { table: ['security'], ca: 'cacert-path', cert: 'cert-path', key: 'key-path', allowedCn: 'cert-allowed-cn' } },
  tikv: { 'tikv.toml': dashed(['security']) },
  tidb: { 'tidb.toml': { table: ['security'], ca: 'cluster-ssl-ca', cert: 'cluster-ssl-cert', key: 'cluster-ssl-key', allowedCn: 'cluster-verify-cn' } },
  tiflash: {
    'tiflash.toml': { table: ['security'], ca: 'ca_path', cert: 'cert_path', key: 'key_path', allowedCn: 'cert_allowed_cn' },
    'tiflash-learner.toml': { ...dashed(['security']), emptyWhenOff: true },
  },
  tiproxy: { 'tiproxy.toml': { table: ['security', 'cluster-tls'], ca: 'ca', cert: 'cert', key: 'key' } },
  pump: { 'pump.toml': { table: ['security'], ca: 'ssl-ca', cert: 'ssl-cert', key: 'ssl-key', allowedCn: 'cert-allowed-cn' } },
  drainer: { 'drainer.toml': { table: ['security'], ca: 'ssl-ca', cert: 'ssl-cert', key: 'ssl-key', allowedCn: 'cert-allowed-cn' } },
  // TiUP passes --ca/--cert/--key in run_cdc.sh (render/ keeps doing that); cdc.toml (v4.0.13+)
  // carries the same paths and is where the CN allow-list lives.
  cdc: { 'cdc.toml': dashed(['security']) },
  // ng-monitoring (Top SQL, Continuous Profiling) dials PD and the components with the prometheus
  // certificate: embed/templates/config/ngmonitoring.toml.tpl `[security] ca-path/cert-path/key-path`
  // (pkg/cluster/spec/monitoring.go on master: the same keys merged as security.*). No CN setting.
  prometheus: { 'ngmonitoring.toml': { table: ['security'], ca: 'ca-path', cert: 'cert-path', key: 'key-path', optionalFile: true } },
};

export function securityKeyNames(role: Role, fileBase: string): KeyNames | undefined {
  return KEYS[role]?.[fileBase];
}

/** Is this config file one that may be absent (see KeyNames.optionalFile)? Then absence says nothing about TLS. */
export function optionalTlsConfig(role: Role, fileBase: string): boolean {
  return KEYS[role]?.[fileBase]?.optionalFile === true;
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

export interface TlsKeyOptions {
  /** The component's version (TiFlash < v7.1 moves its HTTP port); unknown = decided by the file. */
  version?: string;
  /** TiFlash: the topology's http_port, used when the file names neither http_port nor https_port. */
  httpPort?: number;
}

/**
 * TiFlash before v7.1 refuses TLS config without `https_port` ("tls config is set but https_port
 * is not set", dbms/src/Server/Server.cpp) and TiUP writes `https_port: <http_port>` instead of
 * `http_port` when TLS is on (pkg/cluster/spec/tiflash.go). From v7.1 the HTTP service is gone and
 * TiUP writes neither key, so a known v7.1+ file is left alone; with an unknown version a file
 * carrying the key is still switched (v7.1+ ignores both keys).
 */
function swapTiflashHttpPort(doc: TomlTable, on: boolean, opts: TlsKeyOptions): void {
  const atLeast71 = versionAtLeast(opts.version, [7, 1, 0]);
  if (atLeast71 === true) return;
  const [from, to] = on ? ['http_port', 'https_port'] : ['https_port', 'http_port'];
  const port = doc[from] ?? doc[to] ?? (atLeast71 === false ? opts.httpPort ?? 8123 : undefined);
  if (port === undefined) return;
  delete doc[from];
  doc[to] = port;
}

/**
 * Set (settings given) or remove (null) a component's TLS keys in a parsed config. Returns true
 * when the document changed. Pure: mutates only `doc`.
 */
export function applyTlsKeys(role: Role, fileBase: string, doc: TomlTable, settings: TlsSettings | null, opts: TlsKeyOptions = {}): boolean {
  const names = securityKeyNames(role, fileBase);
  if (!names) return false;
  const before = JSON.stringify(doc);
  if (role === 'tiflash' && fileBase === 'tiflash.toml') swapTiflashHttpPort(doc, settings !== null, opts);
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
      for (const k of [names.ca, names.cert, names.key]) {
        if (names.emptyWhenOff) t[k] = '';
        else delete t[k];
      }
      if (names.allowedCn) delete t[names.allowedCn];
      pruneEmpty(doc, names.table);
    }
  }
  return JSON.stringify(doc) !== before;
}

/**
 * A config file's text with the TLS keys set or removed, every other line byte-identical
 * (component-security.md; issue #12 item 11). Returns `text` itself when nothing changes.
 */
export function rewriteTlsConfig(inst: Instance, file: string, text: string, settings: TlsSettings | null, version?: string): string {
  const base = file.split('/').pop() as string;
  // Stage reads a missing file as "": a [security] table alone is no ng-monitoring config.
  if (text.trim() === '' && optionalTlsConfig(inst.role, base)) return text;
  const doc = TOML.parse(text) as TomlTable;
  const changed = applyTlsKeys(inst.role, base, doc, settings, { version, httpPort: inst.ports?.http_port });
  return changed ? editTomlText(text, doc, `${inst.host}:${file}`) : text;
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
