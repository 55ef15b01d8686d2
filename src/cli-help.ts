import type { Command, Help, HelpConfiguration, Option } from 'commander';

/**
 * `tiseal <verb> --help` as people know it from git or kubectl: the verb's own options first, the
 * options every cluster command shares under "Global Options", then examples.
 */
const shared = new WeakSet<Option>();

/** Marks an option as one of the options every cluster command shares. */
export function sharedOption(opt: Option): Option {
  shared.add(opt);
  return opt;
}

export const helpConfig: Partial<HelpConfiguration> = {
  showGlobalOptions: true,
  visibleOptions(this: Help, cmd: Command): Option[] {
    // --json is declared with the shared options but is the verb's own; it goes after the verb's flags.
    const own = cmd.options.filter((o) => !o.hidden && !shared.has(o)).sort((a, b) => Number(a.long === '--json') - Number(b.long === '--json'));
    const help = cmd.createOption('-h, --help', 'display help for command');
    return [...own, help];
  },
  // The shared options are declared on each verb (so they parse after it) but read as global ones.
  visibleGlobalOptions(cmd: Command): Option[] {
    return cmd.options.filter((o) => !o.hidden && shared.has(o));
  },
};

/** Examples per command path (`tls enable`), shown after the options. */
export const EXAMPLES: Record<string, string[]> = {
  '': [
    'tiseal topology check topology.yaml',
    'tiseal tls enable topology.yaml --dry-run',
    'tiseal tls status topology.yaml --json',
  ],
  'topology check': ['tiseal topology check topology.yaml', 'tiseal topology check topology.yaml --json | jq .topology.instances'],
  'tls enable': [
    'tiseal tls enable topology.yaml --dry-run            # the plan and every file diff, nothing changed',
    'tiseal tls enable topology.yaml -y --verify-cn       # no prompt; components accept only their callers',
    'tiseal tls enable topology.yaml --ca-cert ca.crt --ca-key ca.key   # your own CA',
  ],
  'tls disable': ['tiseal tls disable topology.yaml', 'tiseal tls disable topology.yaml -y --clean-certificate'],
  'tls status': ['tiseal tls status topology.yaml', 'tiseal tls status topology.yaml --json'],
  'tls rotate': ['tiseal tls rotate topology.yaml                     # new leaves, no restarts', 'tiseal tls rotate topology.yaml --ca --ca-days 3650  # new CA, two rolling restarts'],
  'cert client': ['tiseal cert client topology.yaml --cn alice --out ./alice', 'tiseal cert client topology.yaml --cn grafana --p12 --p12-password-file pw.txt'],
  'encrypt enable': ['tiseal encrypt enable topology.yaml', 'tiseal encrypt enable topology.yaml --master-key-file master.key --method aes128-ctr'],
  'encrypt disable': ['tiseal encrypt disable topology.yaml'],
  'encrypt rotate-key': ['tiseal encrypt rotate-key topology.yaml', 'tiseal encrypt rotate-key topology.yaml --master-key-file new.key'],
  'sql-tls enable': ['tiseal sql-tls enable topology.yaml --dry-run', 'tiseal sql-tls enable topology.yaml -y --extra-san db.example.com --sql-password-file root.pass'],
  'sql-tls disable': ['tiseal sql-tls disable topology.yaml'],
  'sql-tls rotate': ['tiseal sql-tls rotate topology.yaml                # new server certificates, no restart'],
  'sql-tls require': ['tiseal sql-tls require topology.yaml               # refuse plaintext logins (live, no restart)', 'tiseal sql-tls require topology.yaml --off'],
  'sql-tls status': ['tiseal sql-tls status topology.yaml', 'tiseal sql-tls status topology.yaml --json'],
  audit: ['tiseal audit topology.yaml', 'tiseal audit topology.yaml --json --fail-on warn   # exit 1 on any WARN too (CI)'],
};

export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c && c.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** Adds each command's examples to its help (the command tree must be complete). */
export function addExamples(cmd: Command): void {
  const examples = EXAMPLES[commandPath(cmd)];
  if (examples) cmd.addHelpText('after', `\nExamples:\n${examples.map((e) => `  ${e}`).join('\n')}\n`);
  cmd.commands.forEach(addExamples);
}
