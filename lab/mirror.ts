/**
 * Finds the Debian mirror the machine already uses (apt's one-line `.list` and deb822 `.sources`
 * formats), so debootstrap fetches from the same place apt does.
 */
import * as fs from 'fs';
import * as path from 'path';

export interface AptSource {
  uri: string;
  suites: string[];
  components: string[];
  file: string;
}

/** Parse one-line `deb [opts] uri suite comp...` entries. */
export function parseListFormat(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    if (!line.startsWith('deb ') && !line.startsWith('deb\t')) continue;
    const rest = line.slice(3).trim().replace(/^\[[^\]]*\]\s*/, '');
    const [uri, suite, ...components] = rest.split(/\s+/);
    if (uri && suite) out.push({ uri, suites: [suite], components, file });
  }
  return out;
}

/** Parse deb822 stanzas (`Types: deb`, `URIs:`, `Suites:`, `Components:`; `Enabled: no` skips). */
export function parseDeb822Format(text: string, file: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields: Record<string, string> = {};
    let last = '';
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last) {
        fields[last] += ' ' + raw.trim();
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (m) {
        last = m[1].toLowerCase();
        fields[last] = m[2].trim();
      }
    }
    if (!(fields.types ?? '').split(/\s+/).includes('deb')) continue;
    if ((fields.enabled ?? 'yes').toLowerCase() === 'no') continue;
    const suites = (fields.suites ?? '').split(/\s+/).filter(Boolean);
    const components = (fields.components ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.uris ?? '').split(/\s+/).filter(Boolean)) out.push({ uri, suites, components, file });
  }
  return out;
}

/** The mirror that serves `suite` itself (not -security/-updates), or undefined. */
export function pickMirror(sources: AptSource[], suite: string): string | undefined {
  const hit = sources.find((s) => s.suites.includes(suite) && s.components.includes('main'));
  return hit?.uri.replace(/\/+$/, '');
}

export function readAptSources(root = '/etc/apt'): AptSource[] {
  const out: AptSource[] = [];
  const main = path.join(root, 'sources.list');
  if (fs.existsSync(main)) out.push(...parseListFormat(fs.readFileSync(main, 'utf8'), main));
  const dir = path.join(root, 'sources.list.d');
  if (fs.existsSync(dir)) {
    for (const name of fs.readdirSync(dir).sort()) {
      const file = path.join(dir, name);
      // apt itself ignores every other extension (e.g. `.disabled-by-farm`).
      if (name.endsWith('.list')) out.push(...parseListFormat(fs.readFileSync(file, 'utf8'), file));
      else if (name.endsWith('.sources')) out.push(...parseDeb822Format(fs.readFileSync(file, 'utf8'), file));
    }
  }
  return out;
}

export function machineMirror(suite: string, root = '/etc/apt'): string | undefined {
  return pickMirror(readAptSources(root), suite);
}
