import type { Command } from 'commander';
import { buildProgram } from '../../src/cli';
import { EXAMPLES } from '../../src/cli-help';
import { tiseal } from '../support/cli';

const SHARED = ['--yes', '--dry-run', '--identity-file', '--ssh-user', '--ssh-port', '--known-hosts', '--accept-new-host-keys', '--ssh-config', '--state-dir', '--cluster-name', '--concurrency', '--stats-file'];

function leaves(cmd: Command, path: string[] = []): string[][] {
  if (cmd.commands.length === 0) return [path];
  return cmd.commands.flatMap((c) => leaves(c, [...path, c.name()]));
}

const VERBS = leaves(buildProgram());

/** The lines of one `Heading:` section of a help text (up to the next blank line). */
function section(help: string, heading: string): string[] {
  const lines = help.split('\n');
  const at = lines.indexOf(`${heading}:`);
  if (at < 0) return [];
  const end = lines.findIndex((l, i) => i > at && l.trim() === '');
  return lines.slice(at + 1, end < 0 ? undefined : end);
}

describe('tiseal <verb> --help', () => {
  it('covers every verb', () => {
    expect(VERBS.map((v) => v.join(' ')).sort()).toEqual(
      ['audit', 'cert client', 'encrypt disable', 'encrypt enable', 'encrypt rotate-key', 'sql-tls disable', 'sql-tls enable', 'sql-tls require', 'sql-tls rotate', 'sql-tls status', 'tls disable', 'tls enable', 'tls rotate', 'tls status', 'topology check'],
    );
  });

  it.each(VERBS.map((v) => [v.join(' ')]))('%s: own options first, shared ones under Global Options, then examples', async (verb) => {
    const r = await tiseal(...verb.split(' '), '--help');
    expect(r.code).toBe(0);
    const headings = r.out.split('\n').filter((l) => /^[A-Z][\w ]*:$/.test(l));
    const own = section(r.out, 'Options').join('\n');
    const global = section(r.out, 'Global Options').join('\n');
    for (const opt of SHARED) expect(own).not.toContain(opt);
    if (verb === 'topology check') {
      expect(headings).toEqual(['Arguments:', 'Options:', 'Examples:'].filter((h) => h !== 'Arguments:' || r.out.includes(h)));
    } else {
      expect(headings.indexOf('Options:')).toBeLessThan(headings.indexOf('Global Options:'));
      expect(headings.indexOf('Global Options:')).toBeLessThan(headings.indexOf('Examples:'));
      for (const opt of SHARED) expect(global).toContain(opt);
    }
    expect(section(r.out, 'Examples').length).toBeGreaterThanOrEqual(1);
  });

  it('cert client shows --cn as the first option', async () => {
    const r = await tiseal('cert', 'client', '--help');
    expect(section(r.out, 'Options')[0]).toMatch(/^\s+--cn <name>/);
  });

  // Examples cannot rot: each names its verb and only options that verb has.
  it.each(Object.entries(EXAMPLES))('examples of "%s" use only real options', (path, examples) => {
    const program = buildProgram();
    let cmd: Command = program;
    for (const name of path.split(' ').filter(Boolean)) cmd = cmd.commands.find((c) => c.name() === name)!;
    expect(cmd).toBeDefined();
    for (const ex of examples) {
      const words = ex.replace(/#.*$/, '').split('|')[0].trim().split(/\s+/);
      expect(words.slice(0, path ? path.split(' ').length + 1 : 1).join(' ')).toBe(['tiseal', path].filter(Boolean).join(' '));
      const flags = words.filter((w) => w.startsWith('-')).map((w) => w.replace(/=.*$/, ''));
      // A top-level example names a verb: check its flags on that verb.
      const target = path ? cmd : words.slice(1).reduce((c, w) => c.commands.find((x) => x.name() === w) ?? c, program);
      for (const f of flags) expect(target.options.some((o) => o.long === f || o.short === f) ? f : `${f} (unknown to ${ex})`).toBe(f);
    }
  });
});
