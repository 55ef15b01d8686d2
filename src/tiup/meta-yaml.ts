/**
 * TiUP's meta.yaml, edited as text. TiUP writes it with yaml.Marshal(ClusterMeta) (pingcap/tiup
 * pkg/cluster/spec/spec.go: `user`, `tidb_version`, `last_ops_ver`, `topology`); the switch is
 * `topology.global.enable_tls` (GlobalOptions.TLSEnabled, `yaml:"enable_tls,omitempty"`: absent
 * when false). Re-dumping the YAML would reorder, requote and reflow what TiUP wrote, so exactly
 * one value is spliced in place and the result is re-parsed to prove nothing else moved.
 */
import { isDeepStrictEqual } from 'util';
import * as yaml from 'js-yaml';
import { LocalStateError } from '../errors';
import { entryOf, loadYamlWithPositions, PosNode, YamlSyntaxError } from '../topology/yaml-positions';

/** GlobalOptions fields TiUP marshals before enable_tls, in struct order (spec.go). */
const BEFORE_ENABLE_TLS = ['user', 'group', 'ssh_port', 'ssh_type'];

function parse(text: string, file: string) {
  try {
    return loadYamlWithPositions(text);
  } catch (e) {
    if (e instanceof YamlSyntaxError) {
      throw new LocalStateError(`${file}:${e.line}:${e.column}: ${e.reason}`, { suggestion: `TiUP cannot read it either; restore it from ${file.replace(/meta\.yaml$/, 'backup/')} or pass --no-tiup-meta` });
    }
    throw e;
  }
}

function globalNode(text: string, file: string): { root: PosNode | undefined; global: PosNode } {
  const { root } = parse(text, file);
  const topology = entryOf(root, 'topology')?.value;
  const global = entryOf(topology, 'global')?.value;
  if (!global || global.kind !== 'mapping') {
    throw new LocalStateError(`${file} has no topology.global mapping, so it is not a meta.yaml TiUP wrote`, { suggestion: 'check TIUP_HOME and --cluster-name, or pass --no-tiup-meta to leave TiUP\'s metadata alone' });
  }
  return { root, global };
}

/** What meta.yaml says about TLS (`topology.global.enable_tls`). */
export function readEnableTls(text: string, file: string): boolean {
  const { global } = globalNode(text, file);
  return entryOf(global, 'enable_tls')?.value?.value === true;
}

const lineStart = (text: string, at: number) => text.lastIndexOf('\n', at - 1) + 1;
const column = (text: string, at: number) => at - lineStart(text, at);

/** meta.yaml with `topology.global.enable_tls` set to `on`; every other byte as it was. */
export function setEnableTls(text: string, on: boolean, file: string): string {
  const { global } = globalNode(text, file);
  const entry = entryOf(global, 'enable_tls');
  let out: string;
  if (entry?.value) {
    if (entry.value.value === on) return text;
    const raw = text.slice(entry.value.start, entry.value.end);
    const token = /^("[^"]*"|'[^']*'|[^\s,}\]#]+)/.exec(raw)?.[0] ?? raw;
    out = text.slice(0, entry.value.start) + String(on) + text.slice(entry.value.start + token.length);
  } else if (entry) {
    // `enable_tls:` with no value (null): the value goes after the colon.
    const colon = text.indexOf(':', entry.key.end);
    out = text.slice(0, colon + 1) + ` ${on}` + text.slice(colon + 1);
  } else if (!on) {
    return text; // absent is false: what TiUP itself writes for a plaintext cluster (omitempty)
  } else if (text[global.start] === '{') {
    const keys = [...global.entries!.values()].map((e) => e.key.start);
    out = keys.length
      ? text.slice(0, Math.min(...keys)) + 'enable_tls: true, ' + text.slice(Math.min(...keys))
      : text.slice(0, global.start + 1) + 'enable_tls: true' + text.slice(global.start + 1);
  } else {
    const entries = [...global.entries!.entries()];
    const anchors = entries.filter(([k, e]) => BEFORE_ENABLE_TLS.includes(k) && e.value).map(([, e]) => e);
    const first = entries.map(([, e]) => e).sort((a, b) => a.key.start - b.key.start)[0];
    if (!first) throw new LocalStateError(`${file}: topology.global is empty`, { suggestion: 'pass --no-tiup-meta to leave TiUP\'s metadata alone' });
    const indent = ' '.repeat(column(text, first.key.start));
    const line = `${indent}enable_tls: true\n`;
    if (anchors.length) {
      // After TiUP's own predecessor fields, where yaml.Marshal would have put it.
      const last = anchors.sort((a, b) => b.value!.end - a.value!.end)[0]!;
      const nl = text.indexOf('\n', Math.max(last.value!.end - 1, last.value!.start));
      out = nl < 0 ? `${text}\n${line}` : text.slice(0, nl + 1) + line + text.slice(nl + 1);
    } else {
      const at = lineStart(text, first.key.start);
      out = text.slice(0, at) + line + text.slice(at);
    }
  }
  proveOneChange(text, out, on, file);
  return out;
}

/** The edited file must mean the same as before except for enable_tls. */
function proveOneChange(before: string, after: string, on: boolean, file: string): void {
  const strip = (t: string) => {
    const d = yaml.load(t) as { topology: { global: Record<string, unknown> } };
    const v = d.topology.global.enable_tls;
    delete d.topology.global.enable_tls;
    return { d, v };
  };
  const a = strip(before);
  const b = strip(after);
  if (b.v !== on || !isDeepStrictEqual(a.d, b.d)) {
    throw new LocalStateError(`${file}: could not set enable_tls without changing anything else (its layout is unusual)`, {
      suggestion: `set topology.global.enable_tls: ${on} by hand (tiup cluster edit-config), or pass --no-tiup-meta`,
    });
  }
}
