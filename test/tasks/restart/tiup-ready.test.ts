/**
 * TiUP's restart primitives as `--schedule stop-all` uses them (src/tasks/restart/tiup-ready.ts):
 * `daemon-reload && systemctl <action>`, and Ready = `ss -ltn` until `:<port> ` shows, checked at once
 * and then every Sleep (1 s in TiUP; shortened here), TiFlash's flash service port then store status.
 */
import * as http from 'http';
import type { AddressInfo } from 'net';
import { FakeExecutor } from '../../../src/ssh/fake';
import { portListed, readyPort, tiupReady, tiupSystemctl } from '../../../src/tasks/restart/tiup-ready';
import { parseTopology } from '../../../src/topology';

const topo = parseTopology(
  [
    'global: {user: tidb}',
    'pd_servers: [{host: 10.0.0.1}]',
    'tikv_servers: [{host: 10.0.0.1}]',
    'tiflash_servers: [{host: 127.0.0.1, flash_proxy_status_port: 1}]',
  ].join('\n'),
  't.yaml',
);
const pd = topo.instances.find((i) => i.role === 'pd')!;
const tiflash = topo.instances.find((i) => i.role === 'tiflash')!;

const SS_HEADER = 'State  Recv-Q Send-Q Local Address:Port Peer Address:Port Process\n';
const ssLine = (port: number) => `LISTEN 0      4096         0.0.0.0:${port}      0.0.0.0:*\n`;

describe("TiUP's restart primitives", () => {
  it('runs systemctl as TiUP does: daemon-reload first, every time', async () => {
    const e = new FakeExecutor('10.0.0.1');
    e.onExec(/systemctl/, () => ({ stdout: '', stderr: '', code: 0 }));
    await tiupSystemctl(e, 'stop', pd.unit);
    await tiupSystemctl(e, 'start', pd.unit);
    expect(e.commands().filter((c) => c.includes('systemctl'))).toEqual([
      `sudo systemctl daemon-reload && systemctl stop ${pd.unit}`,
      `sudo systemctl daemon-reload && systemctl start ${pd.unit}`,
    ]);
  });

  it("matches the port as TiUP's WaitFor does (`:<port> `, so 2379 is not 23790)", () => {
    expect(portListed(SS_HEADER + ssLine(23790), 2379)).toBe(false);
    expect(portListed(SS_HEADER + ssLine(2379), 2379)).toBe(true);
    expect(readyPort(pd)).toBe(2379);
    expect(readyPort(tiflash)).toBe(3930); // TiFlashInstance.Ready: GetServicePort, not the main (tcp) port
  });

  it('polls ss -ltn until the port shows: at once, then every sleep', async () => {
    const e = new FakeExecutor('10.0.0.1');
    let calls = 0;
    e.onExec(/^ss -ltn$/, () => ({ stdout: SS_HEADER + (++calls >= 3 ? ssLine(2379) : ssLine(22)), stderr: '', code: 0 }));
    const t0 = Date.now();
    await tiupReady(e, pd, { sleepMs: 100 });
    expect(calls).toBe(3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('gives up after the timeout naming host, unit and port', async () => {
    const e = new FakeExecutor('10.0.0.1');
    e.onExec(/^ss -ltn$/, () => ({ stdout: SS_HEADER, stderr: '', code: 0 }));
    await expect(tiupReady(e, pd, { sleepMs: 20, timeoutMs: 100 })).rejects.toThrow(`10.0.0.1 ${pd.unit}: timed out waiting for port 2379 to be started after 0s (TiUP's Ready)`);
  });

  it("waits for TiFlash's store status after its port: Running or 404 ends the wait", async () => {
    let answers = ['Starting', 'Running'];
    let after = 'Running';
    const srv = http.createServer((_q, r) => r.end(answers.shift() ?? after));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as AddressInfo).port;
    try {
      const inst = { ...tiflash, ports: { ...tiflash.ports, flash_proxy_status_port: port } };
      const e = new FakeExecutor('127.0.0.1');
      e.onExec(/^ss -ltn$/, () => ({ stdout: SS_HEADER + ssLine(3930), stderr: '', code: 0 }));
      await tiupReady(e, inst, { sleepMs: 20 });
      expect(answers).toEqual([]);
      after = 'Starting';
      await expect(tiupReady(e, inst, { sleepMs: 20, timeoutMs: 100 })).rejects.toThrow(
        new RegExp(`timed out waiting for tiflash to be ready \\(http://127\\.0\\.0\\.1:${port}/tiflash/store-status: HTTP 200 Starting\\)`),
      );
    } finally {
      srv.close();
    }
  });
});
