/**
 * Pump and Drainer in the TLS switch (issue #12 item 2): the lab topology plus one of each, as TiUP
 * converts them (pkg/cluster/spec/pump.go, drainer.go setTLSConfig: `security.ssl-ca/ssl-cert/ssl-key`;
 * InitConfig: `--pd-urls` with the PDs' https advertise client URLs), restarted in TiUP's start order.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { execFileSync } from 'child_process';
import { tlsSteps } from '../../../src/plans/tls';
import { FakePool } from '../../../src/ssh';
import { certificatesStep } from '../../../src/tasks/certs/issue';
import type { TlsContext } from '../../../src/tasks/context';
import { stageStep } from '../../../src/tasks/certs/stage';
import { parseTopology } from '../../../src/topology';
import type { Topology } from '../../../src/topology/types';
import { deployedPool, fakeTlsContext } from '../../support/deployed-pool';

jest.setTimeout(60_000);

const labFile = path.join(__dirname, '..', '..', '..', 'lab', 'topologies', 'default.yaml');
/** The lab's binlog variant (test/lab/binlog.test.ts appends the same lines). */
const BINLOG_SERVERS = '\npump_servers:\n  - host: 10.77.0.12\n\ndrainer_servers:\n  - host: 10.77.0.13\n    config:\n      syncer.db-type: "file"\n';
const topology = (): Topology => parseTopology(fs.readFileSync(labFile, 'utf8') + BINLOG_SERVERS, 'binlog.yaml');

function context(want: 'on' | 'off', t: Topology, pool: FakePool, stateDir: string, verifyCn: boolean): TlsContext {
  return fakeTlsContext({ want, topology: t, pool, stateDir, cluster: 'binlog', flags: { verifyCn, schedule: 'tiers' }, facts: { pdVersion: 'v8.1.2' } });
}

test('the plan restarts Pump after TiKV and Drainer after TiFlash (TiUP start order)', () => {
  const ids = tlsSteps(fakeTlsContext({ want: 'on', topology: topology(), keepPd: undefined, removedPds: [], flags: { keyType: 'rsa' } })).map((s) => s.id);
  const order = ['restart-pd', 'restart-tikv', 'restart-pump', 'restart-tidb', 'restart-tiflash', 'restart-drainer', 'restart-cdc'];
  expect(ids.filter((id) => order.includes(id))).toEqual(order);
});

describe('stage with Pump and Drainer (fake hosts)', () => {
  let stateDir: string;
  beforeEach(() => (stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-stage-binlog-'))));
  afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));

  it('enable --verify-cn: leaves with their CN and host, [security] ssl-* and the CN list, https --pd-urls; disable gives every file back', async () => {
    const t = topology();
    const pool = deployedPool(t);
    const files = (role: string) => {
      const inst = t.instances.find((i) => i.role === role)!;
      const h = pool.host(inst.host);
      return { inst, h, conf: () => h.readText(inst.configFiles[0])!, script: () => h.readText(inst.runScript)! };
    };
    const pump = files('pump');
    const drainer = files('drainer');
    const before = [pump.conf(), pump.script(), drainer.conf(), drainer.script()];

    const ctx = context('on', t, pool, stateDir, true);
    for (const a of (await certificatesStep.decide(ctx)).actions) await a.run();
    const decision = await stageStep.decide(ctx);
    expect(decision.actions.find((a) => a.title.startsWith('pump-8250 on 10.77.0.12'))!.title).toMatch(/tls\/ca.crt.*tls\/pump.pem.*tls\/pump.crt.*conf\/pump.toml.*scripts\/run_pump.sh/);
    for (const a of decision.actions) await a.run();

    expect(pump.conf()).toContain('[security]\nssl-ca = "/tidb-deploy/pump-8250/tls/ca.crt"\nssl-cert = "/tidb-deploy/pump-8250/tls/pump.crt"\nssl-key = "/tidb-deploy/pump-8250/tls/pump.pem"\n');
    expect(pump.conf()).toMatch(/^cert-allowed-cn = \["drainer", "prometheus", "pump", "tidb", "tiseal"\]$/m);
    expect(drainer.conf()).toContain('ssl-cert = "/tidb-deploy/drainer-8249/tls/drainer.crt"');
    expect(drainer.conf()).toMatch(/^cert-allowed-cn = \["drainer", "prometheus", "pump", "tiseal"\]$/m);
    expect(drainer.conf()).toContain('db-type = "file"');
    const https = '--pd-urls="https://10.77.0.11:2379,https://10.77.0.12:2379,https://10.77.0.13:2379"';
    expect(pump.script()).toContain(https);
    expect(drainer.script()).toContain(https);
    expect(pump.h.readText('/tidb-deploy/pump-8250/backup/tiseal-r1/scripts/run_pump.sh')).toBe(before[1]);

    // CN = the component (as TiUP issues them), the host in the SANs (drainer and TiDB verify it).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiseal-binlog-cert-'));
    try {
      for (const { inst, h } of [pump, drainer]) {
        const crt = path.join(dir, `${inst.role}.crt`);
        fs.writeFileSync(crt, h.readText(`${inst.deployDir}/tls/${inst.role}.crt`)!);
        const text = execFileSync('openssl', ['x509', '-noout', '-subject', '-ext', 'subjectAltName', '-in', crt]).toString();
        expect(text).toMatch(new RegExp(`CN ?= ?${inst.role}\\b`));
        expect(text).toContain(`IP Address:${inst.host}`);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect((await stageStep.decide(ctx)).actions).toEqual([]);

    const off = context('off', t, pool, stateDir, false);
    for (const a of (await stageStep.decide(off)).actions) await a.run();
    expect([pump.conf(), pump.script(), drainer.conf(), drainer.script()]).toEqual(before);
  });
});
