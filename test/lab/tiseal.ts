/**
 * Run the real tiseal CLI (bin/tiseal.js → dist/) against the lab, as an operator would: its own
 * process, no terminal, the lab's key and known_hosts. Checks use independent clients (openssl,
 * curl, etcdctl, ssh), never tiseal's own code.
 */
import { spawnSync } from 'child_process';
import * as http from 'http';
import * as https from 'https';
import * as fs from 'fs';
import * as path from 'path';
import { labReset, type LabInfo } from '../../lab';
import { loadTopology } from '../../src/topology';
import type { Instance, Topology } from '../../src/topology/types';
import { ensureLab, sshOk } from './helpers';
import { tiupTlsEndpoints } from './tiup-ports';
import { resolveOptions } from '../../lab/options';

export { RunResult, tisealEnv, runTiseal, clusterName, clusterDir, tlsFiles } from '../../lab/tiseal-run';
import { runTiseal, clusterDir, tlsFiles, type RunResult } from '../../lab/tiseal-run';

/**
 * Run tiseal and SIGKILL it (a real kill) as soon as its journal shows `event` for `step`
 * (plus `afterMs`). Resolves with the step events seen.
 */
export async function runAndKill(info: LabInfo, args: string[], when: { type: 'step-start' | 'step-done'; step: string | RegExp; afterMs?: number }): Promise<RunResult> {
  const journal = path.join(clusterDir(info), 'journal.jsonl');
  const startSize = fs.existsSync(journal) ? fs.statSync(journal).size : 0;
  let poll: NodeJS.Timeout | undefined;
  const result = await runTiseal(info, args, {
    onSpawn: (child) => {
      poll = setInterval(() => {
        if (!fs.existsSync(journal)) return;
        const fresh = fs.readFileSync(journal, 'utf8').slice(startSize);
        const hit = fresh.split('\n').some((l) => {
          try {
            const e = JSON.parse(l);
            return e.type === when.type && (typeof when.step === 'string' ? e.step === when.step : when.step.test(e.step));
          } catch {
            return false;
          }
        });
        if (hit) {
          clearInterval(poll);
          setTimeout(() => child.kill('SIGKILL'), when.afterMs ?? 0);
        }
      }, 25);
    },
  });
  clearInterval(poll);
  return result;
}

/** The lab with a fresh cluster that `tiseal tls enable` has just put on TLS (shared setup of the rotation tests). */
export async function labOnTls(extra: string[] = []): Promise<LabInfo> {
  const info = await ensureLab();
  await labReset();
  const r = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes', ...extra]);
  if (r.code !== 0) throw new Error(`enable failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
  return info;
}

export function labTopology(info: LabInfo): Topology {
  return loadTopology(info.topologyFile);
}

/** Every (instance, TLS port) of the lab, from TiUP's port table (test/lab/tiup-ports.ts), not tiseal's. */
export function tlsEndpoints(info: LabInfo): Array<{ inst: Instance; name: string; port: number }> {
  const t = labTopology(info);
  return tiupTlsEndpoints(info.topologyFile, resolveOptions().version).map((ep) => {
    const inst = t.instances.find((i) => i.role === ep.role && i.host === ep.host);
    if (!inst) throw new Error(`${info.topologyFile}: no ${ep.role} instance on ${ep.host} in tiseal's reading of the topology`);
    return { inst, name: ep.key, port: ep.port };
  });
}

/** `openssl s_client -verify_return_error` with the cluster CA and tiseal's client cert. */
export function sClient(info: LabInfo, host: string, port: number, extra: string[] = []): { code: number | null; out: string; cert: string } {
  const f = tlsFiles(info);
  const r = spawnSync('openssl', ['s_client', '-connect', `${host}:${port}`, '-verify_return_error', '-CAfile', f.ca, '-cert', f.cert, '-key', f.key, '-ignore_unexpected_eof', ...extra], {
    input: '',
    encoding: 'utf8',
    timeout: 15_000,
  });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const m = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(r.stdout ?? '');
  return { code: r.status, out, cert: m ? m[0] : '' };
}

export function certSans(pem: string): string {
  return spawnSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName'], { input: pem, encoding: 'utf8' }).stdout;
}

export function curl(args: string[]): { code: number | null; out: string } {
  const r = spawnSync('curl', ['-sS', '--max-time', '8', ...args], { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

/** PD's API over https with the client cert, parsed by curl + JSON (names and URLs only). */
export function pdJson<T>(info: LabInfo, host: string, apiPath: string, scheme: 'http' | 'https'): T {
  const f = tlsFiles(info);
  const args = scheme === 'https' ? ['--cacert', f.ca, '--cert', f.cert, '--key', f.key] : [];
  const r = curl([...args, `${scheme}://${host}:2379${apiPath}`]);
  if (r.code !== 0) throw new Error(`curl ${scheme}://${host}:2379${apiPath}: ${r.out}`);
  return JSON.parse(r.out.replace(/"(member_id|cluster_id|id)":\s*(\d+)/g, '"$1":"$2"')) as T;
}

/** etcdctl (v3 gRPC through PD's client port) with the state dir's client certificate over https; stdout. */
export function etcdctl(info: LabInfo, host: string, scheme: 'http' | 'https', args: string[]): string {
  const f = tlsFiles(info);
  const tls = scheme === 'https' ? ['--cacert', f.ca, '--cert', f.cert, '--key', f.key] : [];
  const r = spawnSync('etcdctl', ['--endpoints', `${scheme}://${host}:2379`, ...tls, '--dial-timeout', '5s', '--command-timeout', '10s', ...args], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 20_000,
  });
  if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')} via ${scheme}://${host}:2379: ${r.stderr}`);
  return r.stdout;
}

export function etcdctlMembers(info: LabInfo, host: string, scheme: 'http' | 'https'): string[] {
  return etcdctl(info, host, scheme, ['member', 'list', '-w', 'simple']).trim().split('\n').filter(Boolean);
}

/** sha256 of every file under the deploy dirs and units of every host (to prove nothing changed). */
export function remoteChecksums(info: LabInfo): string {
  return info.hosts
    .map((h) => `${h}\n${sshOk(info, h, "sudo -n sh -c 'find /tidb-deploy /etc/systemd/system -maxdepth 4 -type f \\( -path \"*/conf/*\" -o -path \"*/scripts/*\" -o -path \"*/tls/*\" -o -name \"*.service\" \\) -print0 | sort -z | xargs -0 sha256sum'")}`)
    .join('\n');
}

/** systemd's ActiveEnterTimestamp and MainPID of every unit of the cluster (to prove nothing restarted). */
export function unitStartTimes(info: LabInfo, t: Topology): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of t.hosts) {
    const units = t.instances.filter((i) => i.host === h.host).map((i) => i.unit);
    const r = sshOk(info, h.host, `systemctl show -p Id -p ActiveEnterTimestampMonotonic -p MainPID ${units.join(' ')}`);
    for (const block of r.trim().split(/\n\s*\n/)) {
      const id = /Id=(.*)/.exec(block)?.[1];
      const ts = /ActiveEnterTimestampMonotonic=(\d+)/.exec(block)?.[1];
      const pid = /MainPID=(\d+)/.exec(block)?.[1];
      // A stopped unit (MainPID 0) must not look "unchanged" to a comparison.
      if (id) out[`${h.host}/${id}`] = pid && pid !== '0' ? `${ts} pid ${pid}` : `not running (${ts})`;
    }
  }
  return out;
}

/** PD's member names and URLs, sorted (to prove a dry run left the membership alone). */
export function pdMembership(info: LabInfo, scheme: 'http' | 'https'): string[] {
  const pd = labTopology(info).instances.find((i) => i.role === 'pd')!.host;
  const m = pdJson<{ members: Array<{ name: string; peer_urls: string[]; client_urls: string[] }> }>(info, pd, '/pd/api/v1/members', scheme);
  return m.members.map((x) => `${x.name} ${[...x.peer_urls].sort().join(',')} ${[...x.client_urls].sort().join(',')}`).sort();
}

/** `Sun 2026-11-29 22:30:01.123456 UTC` (systemctl --timestamp=us+utc) or a TiDB-format log time `2026/11/29 22:30:01.123 +00:00`, in ms. */
function parseTime(t: string): number {
  const sd = /(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) UTC/.exec(t);
  if (sd) return Date.UTC(+sd[1], +sd[2] - 1, +sd[3], +sd[4], +sd[5], +sd[6]) + Number(sd[7]) / 1000;
  const lg = /(\d{4})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3}) ([+-])(\d\d):(\d\d)/.exec(t);
  if (lg) return Date.UTC(+lg[1], +lg[2] - 1, +lg[3], +lg[4], +lg[5], +lg[6], +lg[7]) - (lg[8] === '+' ? 1 : -1) * (+lg[9] * 60 + +lg[10]) * 60_000;
  return NaN;
}

export interface RestartWindow {
  id: string;
  /** When systemd last took the unit out of `active` (a stop). */
  exitAt: number;
  /** When the component last logged that it is ready to serve ("TiKV is ready to serve", "TiFlash is ready"). */
  readyAt: number;
}

/**
 * Each store's last restart, from systemd (stop) and the component's own log (ready again), in
 * wall-clock ms (every host shares this machine's clock). A unit's start is no end of a restart:
 * the process needs a while before it serves.
 */
export function storeRestartWindows(info: LabInfo, insts: Instance[]): RestartWindow[] {
  return insts.map((i) => {
    const show = sshOk(info, i.host, `systemctl show --timestamp=us+utc -p ActiveExitTimestamp ${i.unit}`);
    const ready = sshOk(info, i.host, `sudo -n sh -c 'grep -h "is ready" ${i.logDir}/*.log 2>/dev/null | tail -n 1'`);
    return { id: `${i.host}/${i.unit}`, exitAt: parseTime(show), readyAt: parseTime(ready) };
  });
}

/** Every store restarted after `since` (ms) and was ready again before the next one stopped. */
export function expectRestartedOneAtATime(since: number, windows: RestartWindow[]): void {
  const sorted = [...windows].sort((a, b) => a.exitAt - b.exitAt);
  for (const w of sorted) expect(`${w.id} restarted and ready again ${w.exitAt > since && w.readyAt > w.exitAt}`).toBe(`${w.id} restarted and ready again true`);
  for (let k = 1; k < sorted.length; k++) {
    const [prev, next] = [sorted[k - 1], sorted[k]];
    expect(`${next.id} stopped ${next.exitAt >= prev.readyAt ? 'after' : 'before'} ${prev.id} was ready again`).toBe(`${next.id} stopped after ${prev.id} was ready again`);
  }
}

/**
 * The components' log lines (all levels except DEBUG) stamped within [fromMs, toMs], each prefixed
 * with its host and unit: what a failing lab check prints so a flaky failure can be diagnosed from the
 * CI log alone.
 */
export function logsInWindow(info: LabInfo, insts: Instance[], fromMs: number, toMs: number, maxLines = 120): string[] {
  const out: { t: number; line: string }[] = [];
  const seen = new Set<string>(); // the component log and its stderr copy hold the same lines
  for (const i of insts) {
    const text = sshOk(info, i.host, `sudo -n sh -c 'tail -q -n 2000 ${i.logDir}/*.log 2>/dev/null | grep -v "\\[DEBUG\\]" || true'`);
    for (const line of text.split('\n')) {
      const t = parseTime(line.slice(0, 40));
      const entry = `${i.host}/${i.role}: ${line.slice(0, 400)}`;
      if (t >= fromMs && t <= toMs && !seen.has(entry)) {
        seen.add(entry);
        out.push({ t, line: entry });
      }
    }
  }
  return out.sort((a, b) => a.t - b.t).slice(0, maxLines).map((x) => x.line);
}

/**
 * Ask PD, not tiseal's output, which evict-leader schedulers existed while a run went on (their
 * names, and `store <id>` for each store one evicted): polls `/pd/api/v1/schedulers` on any PD that answers (http, or https with whichever client certificate
 * of the state dir — tls/ or, during a CA move, tls-next/ — the cluster takes at that moment).
 */
export function watchEvictSchedulers(info: LabInfo, pds = ['10.77.0.11', '10.77.0.12', '10.77.0.13'], everyMs = 100): { stop: () => Promise<Set<string>> } {
  const seen = new Set<string>();
  let running = true;
  const ask = <T>(url: string, o: https.RequestOptions): Promise<T> =>
    new Promise((resolve, reject) => {
      const req = (url.startsWith('https:') ? https : http).get(url, { ...o, agent: false, timeout: 1500 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as T) : reject(new Error(`HTTP ${res.statusCode}`))));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
  const once = async (): Promise<void> => {
    const dir = clusterDir(info);
    const tlsDirs = fs.existsSync(dir) ? fs.readdirSync(dir).filter((d) => d === 'tls' || d === 'tls-next' || d.startsWith('tls-retired-')) : [];
    const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f) : undefined);
    const cas = tlsDirs.map((d) => read(path.join(dir, d, 'ca.crt'))).filter((b): b is Buffer => !!b);
    const clients = ['tls', 'tls-next'].map((d) => ({ cert: read(path.join(dir, d, 'client.crt')), key: read(path.join(dir, d, 'client.key')) })).filter((c) => c.cert && c.key);
    for (const pd of pds) {
      for (const attempt of [{ url: `http://${pd}:2379/pd/api/v1/schedulers`, o: {} }, ...clients.map((c) => ({ url: `https://${pd}:2379/pd/api/v1/schedulers`, o: { ca: cas, cert: c.cert, key: c.key } }))]) {
        try {
          const names = await ask<string[]>(attempt.url, attempt.o);
          // One evict-leader-scheduler holds every evicted store (PD v6.5–v8.5): its config names them.
          if (names.includes('evict-leader-scheduler')) {
            const list = await ask<{ 'store-id-ranges'?: Record<string, unknown> }>(attempt.url.replace(/schedulers$/, 'scheduler-config/evict-leader-scheduler/list'), attempt.o).catch(() => undefined);
            for (const id of Object.keys(list?.['store-id-ranges'] ?? {})) seen.add(`store ${id}`);
          }
          for (const n of names) if (n.startsWith('evict-leader')) seen.add(n);
          return;
        } catch {
          // next way in
        }
      }
    }
  };
  const loop = (async () => {
    while (running) {
      await once();
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return seen;
    },
  };
}

/** PD's evict-leader schedulers now (TLS or not: pdJson with the state dir's client). */
export function evictSchedulersNow(info: LabInfo, scheme: 'http' | 'https' = 'https', pd = '10.77.0.11'): string[] {
  return pdJson<string[]>(info, pd, '/pd/api/v1/schedulers', scheme).filter((n) => n.startsWith('evict-leader'));
}

/** IDs of the TiKV stores (not TiFlash's) as PD lists them. */
export function tikvStoreIds(info: LabInfo, scheme: 'http' | 'https' = 'https', pd = '10.77.0.11'): string[] {
  const r = pdJson<{ stores: Array<{ store: { id: number; address: string; labels?: Array<{ key: string; value: string }> } }> }>(info, pd, '/pd/api/v1/stores', scheme);
  return r.stores.filter((s) => !(s.store.labels ?? []).some((l) => l.key === 'engine' && l.value === 'tiflash')).map((s) => String(s.store.id));
}
