import type { Executor } from '../../ssh/executor';
import type { Instance } from '../../topology/types';
import { ClientTls, request } from '../../util/http';
import { shq } from '../../util/shell';
import { sleep } from '../../util/concurrency';
import { StepError } from '../../errors';

/**
 * TiUP's own restart primitives, reproduced so that `--schedule stop-all` is TiUP's schedule and not
 * an approximation (TiUP master, pkg/cluster/operation/action.go):
 * - `systemctl(ctx, e, service, action, …)` runs the SystemdModule with `ReloadDaemon: true`, i.e.
 *   `systemctl daemon-reload && systemctl <action> <unit>` (pkg/cluster/module/systemd.go);
 * - `startInstance` then calls `ins.Ready`: `BaseInstance.Ready` is `PortStarted(ins.Port)`
 *   (pkg/cluster/spec/instance.go), a `module.WaitFor` that runs `ss -ltn` on the host until `:<port> `
 *   shows, checking at once and then every `Sleep` = 1 s (pkg/cluster/module/wait_for.go,
 *   pkg/utils/retry.go), up to `--wait-timeout` (default 120 s);
 * - `TiFlashInstance.Ready` waits for the flash service port the same way, then polls
 *   `<scheme>://host:<flash_proxy_status_port>/tiflash/store-status` every 1 s until it answers
 *   "Running" or 404 (pkg/cluster/spec/tiflash.go).
 */
export const TIUP_WAIT_SLEEP_MS = 1000;
export const TIUP_WAIT_TIMEOUT_MS = 120_000;

export async function tiupSystemctl(exec: Executor, action: 'stop' | 'start', unit: string): Promise<void> {
  await exec.exec(`systemctl daemon-reload && systemctl ${action} ${shq(unit)}`, { sudo: true, timeoutMs: TIUP_WAIT_TIMEOUT_MS + 60_000 });
}

/** `ss -ltn` lists the port as listening (the pattern TiUP greps for: `:<port> `). */
export function portListed(ssOutput: string, port: number): boolean {
  return ssOutput.includes(`:${port} `);
}

/** The port TiUP's Ready waits for: the main port, TiFlash's flash service port. */
export function readyPort(inst: Instance): number {
  return inst.role === 'tiflash' ? inst.ports.flash_service_port : inst.port;
}

export interface ReadyOptions {
  tls?: ClientTls;
  sleepMs?: number;
  timeoutMs?: number;
}

/** TiUP's `ins.Ready` for one instance: port listening on the host, then TiFlash's store status. */
export async function tiupReady(exec: Executor, inst: Instance, o: ReadyOptions = {}): Promise<void> {
  const sleepMs = o.sleepMs ?? TIUP_WAIT_SLEEP_MS;
  const timeoutMs = o.timeoutMs ?? TIUP_WAIT_TIMEOUT_MS;
  const port = readyPort(inst);
  await retry(sleepMs, timeoutMs, async () => portListed((await exec.exec('ss -ltn', { allowFailure: true })).stdout, port), () =>
    `${inst.host} ${inst.unit}: timed out waiting for port ${port} to be started after ${Math.round(timeoutMs / 1000)}s (TiUP's Ready)`);
  if (inst.role !== 'tiflash') return;
  const scheme = o.tls ? 'https' : 'http';
  const url = `${scheme}://${inst.host}:${inst.ports.flash_proxy_status_port}/tiflash/store-status`;
  let last = '';
  await retry(sleepMs, timeoutMs, async () => {
    try {
      const r = await request(url, { tls: o.tls, timeoutMs: 3000 });
      last = `HTTP ${r.status} ${r.body.trim().slice(0, 80)}`;
      return r.status === 404 || r.body === 'Running';
    } catch (e) {
      last = (e as Error).message;
      return false;
    }
  }, () => `${inst.host} ${inst.unit}: timed out waiting for tiflash to be ready (${url}: ${last})`);
}

/** pkg/utils/retry.go Retry: try, and unless the timeout passed, sleep the delay and try again. */
async function retry(sleepMs: number, timeoutMs: number, attempt: () => Promise<boolean>, why: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await attempt()) return;
    if (Date.now() >= deadline) {
      throw new StepError(why(), { suggestion: 'look at the instance (journalctl -u <unit>) and re-run the same command to resume' });
    }
    await sleep(sleepMs);
  }
}
