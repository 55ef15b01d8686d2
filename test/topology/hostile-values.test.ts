/**
 * Values that reach a shell, a path, a unit file or a certificate are held to their formats
 * (issue #11 items 3 and 16), and directories that overlap on one host are refused.
 */
import * as fs from 'fs';
import * as path from 'path';
import { analyseTopology, parseTopology } from '../../src/topology';
import { cdcClusterIdProblem, hostProblem, numaProblem, pathProblem } from '../../src/topology/safe-values';

const errors = (yaml: string) => analyseTopology(yaml, 'h.yaml').problems.filter((p) => p.severity === 'error');
const PD = 'pd_servers:\n  - host: 10.0.0.1\n';

describe('formats', () => {
  test.each([
    ['10.0.0.1', true],
    ['fd00::1', true],
    ['fe80::1%eth0', true],
    ['tidb-1.example.com', true],
    ['db_1', true],
    ['h', true],
    ['$(id)', false],
    ['a b', false],
    ['256.1.1.1', false],
    ['10.0.0', false],
    ['-x', false],
    ['a;b', false],
    ['`id`', false],
  ])('host %j ok=%s', (v, ok) => expect(hostProblem(v) === undefined).toBe(ok));

  test.each([
    ['/tidb-deploy/pd-2379', true],
    ['deploy', true],
    ['/data/tiflash@1:x=y+z', true],
    ['/data/%h', false],
    ['/tidb deploy', false],
    ['/a/$(id)', false],
    ['/a/`id`', false],
    ['/a/../etc', false],
    ['../x', false],
    ["/it's", false],
    ['/a;b', false],
    ['~/x', false],
    ['-rf', false],
    ['/a\\b', false],
  ])('path %j ok=%s', (v, ok) => expect(pathProblem(v) === undefined).toBe(ok));

  test.each([
    ['0', true],
    ['0,1', true],
    ['0-3,8-11', true],
    ['all', true],
    ['+0-1', true],
    ['!0', true],
    ['0 ; curl x|sh ;', false],
    ['0,1 --membind=1', false],
    ['', false],
    ['$(id)', false],
  ])('numactl list %j ok=%s', (v, ok) => expect(numaProblem(v) === undefined).toBe(ok));

  // TiCDC's isValidClusterID (pingcap/tiflow pkg/config/server_config.go).
  test.each([
    ['default', true],
    ['cluster-1', true],
    ['A1-b2-C3', true],
    ['a'.repeat(128), true],
    ['a'.repeat(129), false],
    ['a b', false],
    ['a--b', false],
    ['-a', false],
    ['a_b', false],
    ['owner', false],
    ['changefeed', false],
    ['x;id', false],
  ])('TiCDC cluster id %j ok=%s', (v, ok) => expect(cdcClusterIdProblem(v) === undefined).toBe(ok));
});

describe('the topology model refuses hostile values with their position', () => {
  test.each<[string, string, number, number, RegExp]>([
    ['host $(id)', `pd_servers:\n  - host: "$(id)"\n`, 2, 11, /pd_servers\[0\]\.host "\$\(id\)" is neither an IP address nor a DNS name/],
    ['numa_node with a command (issue #11 item 3)', `${PD}    numa_node: "0 ; curl x|sh ;"\n`, 3, 16, /pd_servers\[0\]\.numa_node "0 ; curl x\|sh ;" is not a numactl list/],
    ['numa_cores', `${PD}tikv_servers:\n  - host: 10.0.0.2\n    numa_node: "0"\n    numa_cores: "0;id"\n`, 6, 17, /tikv_servers\[0\]\.numa_cores/],
    ['ticdc_cluster_id', `${PD}cdc_servers:\n  - host: 10.0.0.2\n    ticdc_cluster_id: "x;id"\n`, 5, 23, /cdc_servers\[0\]\.ticdc_cluster_id "x;id" must match/],
    ['deploy_dir with a space', `${PD}    deploy_dir: "/tidb deploy"\n`, 3, 17, /pd_servers\[0\]\.deploy_dir "\/tidb deploy" contains white space/],
    ['deploy_dir with $()', `${PD}    deploy_dir: "/d/$(id)"\n`, 3, 17, /contains "\$"/],
    ['data_dir with ..', `${PD}    data_dir: /data/../etc\n`, 3, 15, /contains a "\.\." component/],
    ['global deploy_dir', `global:\n  deploy_dir: "/x y"\n${PD}`, 2, 15, /global\.deploy_dir "\/x y" contains white space/],
    ['monitored log_dir', `monitored:\n  log_dir: "/m;x"\n${PD}`, 2, 12, /monitored\.log_dir/],
    ['a line break in any string', `global:\n  resource_control:\n    memory_limit: "1G\\nExecStartPre=/bin/id"\n${PD}`, 3, 19, /global\.resource_control\.memory_limit contains a control character/],
  ])('%s', (_n, yaml, line, column, message) => {
    const e = errors(yaml);
    expect(e.length).toBeGreaterThan(0);
    expect(e[0]).toMatchObject({ line, column });
    expect(e[0].message).toMatch(message);
    expect(e[0].suggestion).toBeTruthy();
  });

  test('the values TiUP writes in its examples still pass', () => {
    const t = parseTopology(`${PD}    numa_node: "0,1"\ntikv_servers:\n  - host: tikv-1.example.com\n    numa_node: "1"\n    numa_cores: "0-7"\ncdc_servers:\n  - host: 10.0.0.3\n    ticdc_cluster_id: "default"\n    tz: Asia/Shanghai\n`, 'ok.yaml');
    expect(t.instances.map((i) => i.host)).toEqual(['10.0.0.1', 'tikv-1.example.com', '10.0.0.3']);
  });
});

describe('overlapping directories on one host', () => {
  const kv = (extra: string) => `tikv_servers:\n  - host: 10.0.0.1\n${extra}`;
  test.each<[string, string, RegExp]>([
    ['TiKV data inside PD data (issue #11 item 16)', `${PD}    data_dir: /data1\n${kv('    data_dir: /data1/tikv-20160\n')}`, /tikv_servers\[0\]\.data_dir '\/data1\/tikv-20160' is inside pd_servers\[0\]\.data_dir '\/data1'/],
    ['PD data inside TiKV data', `${PD}    data_dir: /data1/pd\n${kv('    data_dir: /data1\n')}`, /pd_servers\[0\]\.data_dir '\/data1\/pd' is inside tikv_servers\[0\]\.data_dir '\/data1'/],
    ['data dir inside another instance deploy dir', `global:\n  deploy_dir: /d\n${PD}${kv('    data_dir: /d/pd-2379/kv\n')}`, /tikv_servers\[0\]\.data_dir '\/d\/pd-2379\/kv' is inside pd_servers\[0\]\.deploy_dir '\/d\/pd-2379'/],
    ['deploy dir inside another instance data dir', `${PD}    data_dir: /d\n${kv('    deploy_dir: /d/tikv\n')}`, /tikv_servers\[0\]\.deploy_dir '\/d\/tikv' is inside pd_servers\[0\]\.data_dir '\/d'/],
    ['a data dir holding its own deploy dir', `global:\n  deploy_dir: /d\n${PD}    data_dir: /d\n`, /pd_servers\[0\]\.deploy_dir '\/d\/pd-2379' is inside pd_servers\[0\]\.data_dir '\/d'/],
    ['log dir inside a data dir (TiUP CheckClusterDirOverlap)', `${PD}    data_dir: /data1\n${kv('    log_dir: /data1/log\n')}`, /tikv_servers\[0\]\.log_dir '\/data1\/log' is inside pd_servers\[0\]\.data_dir '\/data1'/],
    ['equal log dirs (TiUP IsSubDir holds for equal paths)', `${PD}    log_dir: /var/log/tidb\n${kv('    log_dir: /var/log/tidb\n')}`, /is the same directory as pd_servers\[0\]\.log_dir/],
    ['TiFlash data dirs nested in one list', `${PD}tiflash_servers:\n  - host: 10.0.0.1\n    data_dir: /f,/f/2\n`, /tiflash_servers\[0\]\.data_dir '\/f\/2' is inside tiflash_servers\[0\]\.data_dir '\/f'/],
    ['a data dir holding the monitoring agents', `global:\n  deploy_dir: /d\n${PD}    data_dir: /d/monitor-9100\n`, /is the same directory as|is inside/],
  ])('%s', (_n, yaml, message) => {
    const e = errors(yaml);
    expect(e.map((x) => x.message).join('\n')).toMatch(message);
    expect(e.every((x) => x.suggestion)).toBe(true);
  });

  test.each<[string, string]>([
    ['the same layout on two hosts', `${PD}    data_dir: /data1\ntikv_servers:\n  - host: 10.0.0.2\n    data_dir: /data1/tikv\n`],
    ["a data dir under the instance's own deploy dir (TiUP's relative default)", `${PD}    data_dir: data\n`],
    ["log dirs under each deploy dir and sibling data dirs (TiUP's default layout)", `global:\n  deploy_dir: /tidb-deploy\n  data_dir: /tidb-data\n${PD}${kv('')}`],
    ['nested deploy dirs (TiUP allows them)', `${PD}    deploy_dir: /d\n${kv('    deploy_dir: /d/kv\n    data_dir: /x/kv\n')}`],
  ])('allowed: %s', (_n, yaml) => {
    expect(errors(yaml)).toEqual([]);
  });

  // The kinds of case TiUP's TestLogDirUnderDataDir (pkg/cluster/spec/validate_test.go) holds
  // CheckClusterDirOverlap to, in tiseal's words; a PD on another host where the case has none.
  const other = 'pd_servers:\n  - host: n9\n';
  test.each<[string, string, boolean]>([
    ['relative log dir inside the relative data dir of the same instance', `${other}tikv_servers:\n  - host: n1\n    data_dir: kvdata\n    log_dir: kvdata/log\n`, false],
    ['absolute data dir inside its own log dir', `${other}tikv_servers:\n  - host: n1\n    log_dir: /srv/kv/log\n    data_dir: /srv/kv/log/data\n`, false],
    ["one instance's log dir inside another's data dir", `${other}tikv_servers:\n  - host: n1\n    data_dir: /srv/kv\ntidb_servers:\n  - host: n1\n    log_dir: /srv/kv/tidb-log\n`, false],
    ["one instance's log dir inside another's log dir", `${other}tikv_servers:\n  - host: n1\n    log_dir: /srv/log\ntidb_servers:\n  - host: n1\n    log_dir: /srv/log/tidb\n`, false],
    ['an absolute data dir inside the relative log dir', 'global:\n  user: ops\n  deploy_dir: dep\npd_servers:\n  - host: n9\ntikv_servers:\n  - host: n1\n    log_dir: lg\n    data_dir: /home/ops/dep/tikv-20160/lg/d\n', false],
    ['the same relative layout on two hosts', `${other}tikv_servers:\n  - host: n1\n    log_dir: kv/log\n  - host: n2\n    data_dir: kv\n`, true],
    ['a log dir whose name only starts like the data dir', `${other}tikv_servers:\n  - host: n1\n    data_dir: /srv/kv\n    log_dir: /srv/kv-log\n`, true],
    ['monitored data dir equal to its deploy dir (unused by the agents)', `monitored:\n  deploy_dir: /srv/mon\n  data_dir: /srv/mon\n  log_dir: /srv/mon/log\n${other}`, true],
  ])("TiUP's overlap rule: %s (ok=%s)", (_n, yaml, ok) => {
    const e = errors(yaml);
    if (ok) expect(e).toEqual([]);
    else expect(e.map((x) => x.message).join('\n')).toMatch(/^directory overlap on host n1: /m);
  });

  test('TiUP example topologies have no overlap', () => {
    const dir = path.join(__dirname, '..', 'fixtures', 'tiup-examples');
    for (const f of fs.readdirSync(dir)) expect([f, errors(fs.readFileSync(path.join(dir, f), 'utf8'))]).toEqual([f, []]);
  });
});
