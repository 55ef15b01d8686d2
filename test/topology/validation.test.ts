/**
 * Every validation problem with its exact file:line:column. Positions were counted by hand from
 * the YAML below (1-based; a value's column is where its first character is).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { formatProblem, TopologyError, type TopologyProblem } from '../../src/errors';
import { analyseTopology, checkTopology, loadTopology, parseTopology } from '../../src/topology';

const F = 'v.yaml';
const lines = (...l: string[]) => l.join('\n') + '\n';

type Expect = [severity: 'error' | 'warning', line: number, column: number, message: string, suggestion?: string];

function problems(yaml: string): TopologyProblem[] {
  return analyseTopology(yaml, F).problems;
}

function shape(ps: TopologyProblem[]): Expect[] {
  return ps.map((p) => [p.severity, p.line, p.column, p.message, ...(p.suggestion ? [p.suggestion] : [])] as Expect);
}

describe('validation problems with positions', () => {
  test.each<[string, string, Expect[]]>([
    [
      'invalid YAML reports the parser position',
      lines('pd_servers:', '  - host: 10.0.0.1', '   client_port: 2379'),
      [['error', 3, 4, 'invalid YAML: bad indentation of a sequence entry', 'fix the YAML syntax at this position']],
    ],
    [
      'duplicate keys are a YAML error at the second key',
      lines('pd_servers:', '  - host: 10.0.0.1', '    host: 10.0.0.2'),
      [['error', 3, 5, 'invalid YAML: duplicated mapping key', 'fix the YAML syntax at this position']],
    ],
    ['empty file', '', [['error', 1, 1, 'the topology file is empty', 'write a TiUP topology (global, pd_servers, tikv_servers, ...)']]],
    ['a list at top level', lines('- host: a'), [['error', 1, 1, 'the topology must be a mapping of sections (global, pd_servers, ...), got a list']]],
    [
      'quoted port is a string, not a number',
      lines('pd_servers:', '  - host: 10.0.0.1', '    client_port: "2379"'),
      [['error', 3, 18, 'pd_servers[0].client_port must be an integer, got the string "2379"', 'write it without quotes: client_port: 2379']],
    ],
    [
      'port that is not a number at all',
      lines('pd_servers:', '  - host: 10.0.0.1', 'tikv_servers:', '  - host: 10.0.0.2', '    port: abc'),
      [['error', 5, 11, 'tikv_servers[0].port must be an integer, got the string "abc"']],
    ],
    [
      'port out of range',
      lines('pd_servers:', '  - host: 10.0.0.1', '    client_port: 70000'),
      [['error', 3, 18, 'pd_servers[0].client_port=70000 is invalid, port should be in the range [1, 65535]']],
    ],
    [
      'boolean field with a non-boolean',
      lines('global:', '  enable_tls: maybe', 'pd_servers:', '  - host: h'),
      [['error', 2, 15, 'global.enable_tls must be true or false, got the string "maybe"']],
    ],
    [
      'mapping field with a scalar',
      lines('pd_servers:', '  - host: h', '    config: 5'),
      [['error', 3, 13, 'pd_servers[0].config must be a mapping, got number 5']],
    ],
    [
      'missing host',
      lines('pd_servers:', '  - client_port: 2379'),
      [['error', 2, 5, 'pd_servers[0] has no host', 'every entry of pd_servers needs "host: <ip or hostname>"']],
    ],
    [
      'empty host points at the key',
      lines('pd_servers:', '  - host: 10.0.0.1', '  - host:', '    client_port: 2381'),
      [['error', 3, 5, 'pd_servers[1] has no host', 'every entry of pd_servers needs "host: <ip or hostname>"']],
    ],
    [
      'no pd_servers at all',
      lines('tikv_servers:', '  - host: 10.0.0.2'),
      [['error', 1, 1, 'the topology has no pd_servers', 'add at least one PD entry under pd_servers, e.g. "- host: 10.0.1.11"']],
    ],
    [
      'empty pd_servers',
      lines('global:', '  user: tidb', 'pd_servers: []'),
      [['error', 3, 1, 'pd_servers is empty', 'add at least one PD entry under pd_servers, e.g. "- host: 10.0.1.11"']],
    ],
    [
      'role list that is not a list',
      lines('pd_servers:', '  host: 10.0.0.1'),
      [['error', 2, 3, 'pd_servers must be a list of instances, got a mapping', 'write each instance as "- host: <ip>" under pd_servers']],
    ],
    [
      'entry that is not a mapping',
      lines('pd_servers:', '  - host: a', '  - 10.0.0.1'),
      [['error', 3, 5, 'pd_servers[1] must be a mapping with at least "host", got the string "10.0.0.1"']],
    ],
    ['section that is not a mapping', lines('global: tidb', 'pd_servers:', '  - host: h'), [['error', 1, 9, 'global must be a mapping, got the string "tidb"']]],
    [
      'port conflict between roles on one host (default pd peer_port points at the pd entry)',
      lines('pd_servers:', '  - host: 10.0.0.1', 'tikv_servers:', '  - host: 10.0.0.1', '    port: 2380'),
      [['error', 5, 11, 'port conflict for 2380 on host 10.0.0.1: tikv_servers[0].port is also used by pd_servers[0].peer_port (v.yaml:2:5)', 'give one of them another port or move it to another host']],
    ],
    [
      'two instances with all-default ports on one host conflict on every port',
      lines('pd_servers:', '  - host: 10.0.0.1', '  - host: 10.0.0.1'),
      [
        ['error', 3, 5, 'port conflict for 2379 on host 10.0.0.1: pd_servers[1].client_port is also used by pd_servers[0].client_port (v.yaml:2:5)', 'give one of them another port or move it to another host'],
        ['error', 3, 5, 'port conflict for 2380 on host 10.0.0.1: pd_servers[1].peer_port is also used by pd_servers[0].peer_port (v.yaml:2:5)', 'give one of them another port or move it to another host'],
        ['error', 3, 5, "directory conflict for '/home/tidb/deploy/pd-2379' on host 10.0.0.1: pd_servers[1].deploy_dir is also used by pd_servers[0].deploy_dir (v.yaml:2:5)", 'give each instance on one host its own deploy_dir and data_dir'],
        ['error', 3, 5, 'PD name "pd-10.0.0.1-2379" of pd_servers[1] is also used by pd_servers[0] (v.yaml:2:5)', 'every PD member needs a unique name; remove `name` to get the default pd-<host>-<client_port>'],
      ],
    ],
    [
      'port conflict with the node_exporter every host runs',
      lines('pd_servers:', '  - host: 10.0.0.1', 'tidb_servers:', '  - host: 10.0.0.1', '    status_port: 9100'),
      [['error', 5, 18, 'port conflict for 9100 on host 10.0.0.1: tidb_servers[0].status_port is also used by monitored.node_exporter_port (default 9100; TiUP runs node_exporter on every host)', 'give one of them another port or move it to another host']],
    ],
    [
      'port conflict with an explicit monitored port',
      lines('monitored:', '  blackbox_exporter_port: 2379', 'pd_servers:', '  - host: 10.0.0.1'),
      [['error', 4, 5, 'port conflict for 2379 on host 10.0.0.1: pd_servers[0].client_port is also used by monitored.blackbox_exporter_port (v.yaml:2:27)', 'give one of them another port or move it to another host']],
    ],
    [
      'same deploy_dir twice on one host',
      lines('pd_servers:', '  - host: 10.0.0.1', 'tikv_servers:', '  - host: 10.0.0.2', '    deploy_dir: /tidb/tikv', '  - host: 10.0.0.2', '    port: 20161', '    status_port: 20181', '    deploy_dir: /tidb/tikv'),
      [['error', 9, 17, "directory conflict for '/tidb/tikv' on host 10.0.0.2: tikv_servers[1].deploy_dir is also used by tikv_servers[0].deploy_dir (v.yaml:5:17)", 'give each instance on one host its own deploy_dir and data_dir']],
    ],
    [
      'same data_dir for two roles on one host',
      lines('global:', '  data_dir: /data', 'pd_servers:', '  - host: 10.0.0.1', '    data_dir: /data/shared', 'tikv_servers:', '  - host: 10.0.0.1', '    data_dir: /data/shared'),
      [['error', 8, 15, "directory conflict for '/data/shared' on host 10.0.0.1: tikv_servers[0].data_dir is also used by pd_servers[0].data_dir (v.yaml:5:15)", 'give each instance on one host its own deploy_dir and data_dir']],
    ],
    [
      'same directories on different hosts are fine',
      lines('pd_servers:', '  - host: 10.0.0.1', '    deploy_dir: /d', '  - host: 10.0.0.2', '    deploy_dir: /d'),
      [],
    ],
    [
      'duplicate PD names',
      lines('pd_servers:', '  - host: 10.0.0.1', '    name: pd-a', '  - host: 10.0.0.2', '    name: pd-a'),
      [['error', 5, 11, 'PD name "pd-a" of pd_servers[1] is also used by pd_servers[0] (v.yaml:3:11)', 'every PD member needs a unique name; remove `name` to get the default pd-<host>-<client_port>']],
    ],
    [
      'invalid user name',
      lines('global:', '  user: Tidb', 'pd_servers:', '  - host: h'),
      [['error', 2, 9, 'global.user "Tidb" is not a valid Linux user name', 'use lower case letters, digits, "_" or "-", starting with a letter or "_" (at most 32 characters)']],
    ],
    ['invalid systemd_mode', lines('global:', '  systemd_mode: root', 'pd_servers:', '  - host: h'), [['error', 2, 17, 'global.systemd_mode must be "system" or "user", got "root"']]],
    [
      'one host, two architectures',
      lines('pd_servers:', '  - host: h', 'tikv_servers:', '  - host: h', '    arch: arm64'),
      [['error', 4, 5, 'platform mismatch on host h: tikv_servers[0] is linux/arm64 but pd_servers[0] (v.yaml:2:5) is linux/amd64', 'set the same os and arch for every instance on one host']],
    ],
    [
      'relative rule_dir',
      lines('pd_servers:', '  - host: h', 'monitoring_servers:', '  - host: h', '    rule_dir: rules'),
      [['error', 5, 15, 'relative path is not allowed for field rule_dir: rules', 'use an absolute path on the control machine']],
    ],
    [
      'relative tiflash storage dir',
      lines('pd_servers:', '  - host: h', 'tiflash_servers:', '  - host: h', '    config:', '      storage.main.dir: [data]'),
      [['error', 6, 7, "directory 'data' should be an absolute path in 'tiflash_servers:h.config.storage.main.dir'"]],
    ],
    [
      'unknown keys are warnings with the nearest known key',
      lines('global:', '  deploydir: /x', 'pd_servers:', '  - host: 10.0.0.1', '    clinet_port: 2379', 'tikv_server:', '  - host: 10.0.0.2'),
      [
        ['warning', 2, 3, 'unknown field "deploydir" in global', 'did you mean "deploy_dir"?'],
        ['warning', 5, 5, 'unknown field "clinet_port" in pd_servers[0]', 'did you mean "client_port"?'],
        ['warning', 6, 1, 'unknown section "tikv_server"', 'did you mean "tikv_servers"?'],
      ],
    ],
    [
      'unknown server_configs component and resource_control key',
      lines('server_configs:', '  tiflash_learner:', '    a: 1', 'global:', '  resource_control:', '    memory_limt: 2G', 'pd_servers:', '  - host: h'),
      [
        ['warning', 2, 3, 'unknown field "tiflash_learner" in server_configs', 'did you mean "tiflash-learner"?'],
        ['warning', 6, 5, 'unknown field "memory_limt" in global.resource_control', 'did you mean "memory_limit"?'],
      ],
    ],
    [
      'a field of another role is unknown here (tidb has no data_dir)',
      lines('pd_servers:', '  - host: h', 'tidb_servers:', '  - host: h', '    data_dir: /x'),
      [['warning', 5, 5, 'unknown field "data_dir" in tidb_servers[0]', 'remove it: tidb_servers entries have no data_dir (TiUP rejects unknown fields)']],
    ],
  ])('%s', (_name, yaml, expected) => {
    expect(shape(problems(yaml))).toEqual(expected);
  });

  test('YAML 1.1 booleans are read like TiUP (yaml.v2) reads them; quoted ones are strings', () => {
    const t = parseTopology(lines('global:', '  enable_tls: yes', 'pd_servers:', '  - host: h'), F);
    expect(t.global.enableTls).toBe(true);
    expect(shape(problems(lines('global:', "  enable_tls: 'yes'", 'pd_servers:', '  - host: h')))).toEqual([
      ['error', 2, 15, 'global.enable_tls must be true or false, got the string "yes"'],
    ]);
  });

  test('string fields take any scalar by its spelling, as Go yaml.v2 does', () => {
    const t = parseTopology(lines('pd_servers:', '  - host: h', '    numa_node: 0', '    name: 1.10'), F);
    expect(t.instances[0].numaNode).toBe('0');
    expect(t.instances[0].name).toBe('1.10');
  });

  test('unmanaged roles warn, take part in conflict checks, and are not SSH targets', () => {
    const yaml = lines('pd_servers:', '  - host: a', 'tso_servers:', '  - host: b', '  - host: a', '    port: 2379');
    const { problems: ps } = analyseTopology(yaml, F);
    expect(shape(ps)).toEqual([
      ['warning', 3, 1, 'tso_servers: tiseal does not manage tso instances; they are only checked for port and directory conflicts', 'tls enable/disable/rotate refuse this topology: tiseal does not convert PD microservices (tso) to TLS yet (TiUP does)'],
      ['error', 6, 11, 'port conflict for 2379 on host a: tso_servers[1].port is also used by pd_servers[0].client_port (v.yaml:2:5)', 'give one of them another port or move it to another host'],
    ]);
    const t = parseTopology(lines('pd_servers:', '  - host: a', 'tso_servers:', '  - host: b'), F);
    expect(t.hosts).toEqual([{ host: 'a', sshPort: 22 }]);
    expect(t.otherInstances?.map((i) => [i.role, i.name, i.deployDir])).toEqual([['tso', 'tso-b-3379', '/home/tidb/deploy/tso-3379']]);
  });

  test('parseTopology throws one TopologyError carrying every problem', () => {
    const yaml = lines('pd_servers:', '  - host: 10.0.0.1', '    clinet_port: 2379', 'tikv_servers:', '  - host: 10.0.0.1', '    port: 2379', '  - port: abc');
    let err: unknown;
    try {
      parseTopology(yaml, F);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TopologyError);
    const te = err as TopologyError;
    expect(shape(te.problems)).toEqual([
      ['warning', 3, 5, 'unknown field "clinet_port" in pd_servers[0]', 'did you mean "client_port"?'],
      ['error', 6, 11, 'port conflict for 2379 on host 10.0.0.1: tikv_servers[0].port is also used by pd_servers[0].client_port (v.yaml:2:5)', 'give one of them another port or move it to another host'],
      ['error', 7, 5, 'tikv_servers[1] has no host', 'every entry of tikv_servers needs "host: <ip or hostname>"'],
      ['error', 7, 11, 'tikv_servers[1].port must be an integer, got the string "abc"'],
    ]);
    expect(te.message).toBe(`${formatProblem(te.problems[1])} (and 2 more errors)`);
    expect(te.suggestion).toContain('tiseal topology check');
  });

  test('warnings alone do not fail parsing and are kept on the topology', () => {
    const t = parseTopology(lines('pd_servers:', '  - host: h', '    clinet_port: 2379'), F);
    expect(t.warnings).toHaveLength(1);
    expect(formatProblem(t.warnings[0])).toBe('v.yaml:3:5: warning: unknown field "clinet_port" in pd_servers[0] (did you mean "client_port"?)');
  });
});

describe('files', () => {
  const fixtures = path.join(__dirname, '..', 'fixtures', 'topology');

  test('loadTopology on a missing file names the path and suggests a fix', () => {
    const missing = path.join(os.tmpdir(), `tiseal-no-such-${process.pid}.yaml`);
    expect(() => loadTopology(missing)).toThrow(TopologyError);
    try {
      loadTopology(missing);
    } catch (e) {
      const te = e as TopologyError;
      expect(te.message).toBe(`${missing}:1:1: error: cannot read the topology file: no such file`);
      expect(te.suggestion).toContain('meta.yaml');
    }
  });

  test('loadTopology on a directory', () => {
    expect(() => loadTopology(fixtures)).toThrow(/it is a directory/);
  });

  test('checkTopology never throws: missing file, broken YAML, conflicts', () => {
    const missing = path.join(os.tmpdir(), `tiseal-no-such-${process.pid}.yaml`);
    expect(checkTopology(missing)).toEqual({
      problems: [expect.objectContaining({ file: missing, line: 1, column: 1, severity: 'error', message: expect.stringContaining('no such file') })],
    });
    const bad = checkTopology(path.join(fixtures, 'bad-indent.yaml'));
    expect(bad.topology).toBeUndefined();
    expect(shape(bad.problems)).toEqual([['error', 7, 17, 'invalid YAML: bad indentation of a mapping entry', 'fix the YAML syntax at this position']]);
    const conflict = checkTopology(path.join(fixtures, 'port-conflict.yaml'));
    expect(conflict.topology).toBeUndefined();
    expect(conflict.problems.map((p) => `${p.line}:${p.column} ${p.severity}`)).toEqual(['10:5 error', '14:5 warning']);
    expect(conflict.problems[0].message).toBe(
      `port conflict for 20180 on host 10.0.1.11: tikv_servers[0].status_port is also used by tikv_servers[0].port (${path.join(fixtures, 'port-conflict.yaml')}:11:11)`,
    );
    expect(conflict.problems[1].suggestion).toBe('did you mean "port"?');
  });

  test('checkTopology returns the topology when there are only warnings', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-topo-'));
    try {
      const file = path.join(dir, 't.yaml');
      fs.writeFileSync(file, lines('pd_servers:', '  - host: h', '    numa: 0'));
      const r = checkTopology(file);
      expect(r.topology?.instances).toHaveLength(1);
      expect(shape(r.problems)).toEqual([['warning', 3, 5, 'unknown field "numa" in pd_servers[0]', 'did you mean "numa_node"?']]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
