/**
 * Run the real tiseal CLI (bin/tiseal.js → dist/) against the lab, as an operator would: its own
 * process, no terminal, the lab's key and known_hosts. Checks use independent clients (openssl,
 * curl, etcdctl, ssh), never tiseal's own code.
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { labReset, type LabInfo } from '../../lab';
import { COMPONENTS } from '../../src/components';
import { loadTopology } from '../../src/topology';
import type { Instance, Topology } from '../../src/topology/types';
import { ensureLab, sshOk } from './helpers';

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
export async function labOnTls(): Promise<LabInfo> {
  const info = await ensureLab();
  await labReset();
  const r = await runTiseal(info, ['tls', 'enable', info.topologyFile, '--yes']);
  if (r.code !== 0) throw new Error(`enable failed (${r.code}):\n${r.stdout.slice(-2000)}\n${r.stderr}`);
  return info;
}

export function labTopology(info: LabInfo): Topology {
  return loadTopology(info.topologyFile);
}

/** Every (instance, TLS port) of the lab. */
export function tlsEndpoints(t: Topology): Array<{ inst: Instance; name: string; port: number }> {
  return t.instances.flatMap((inst) => COMPONENTS[inst.role].tlsPorts(inst).map((p) => ({ inst, ...p })));
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

export function etcdctlMembers(info: LabInfo, host: string, scheme: 'http' | 'https'): string[] {
  const f = tlsFiles(info);
  const tls = scheme === 'https' ? ['--cacert', f.ca, '--cert', f.cert, '--key', f.key] : [];
  const r = spawnSync('etcdctl', ['--endpoints', `${scheme}://${host}:2379`, ...tls, '--dial-timeout', '5s', '--command-timeout', '10s', 'member', 'list', '-w', 'simple'], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 20_000,
  });
  if (r.status !== 0) throw new Error(`etcdctl member list via ${scheme}://${host}:2379: ${r.stderr}`);
  return r.stdout.trim().split('\n').filter(Boolean);
}

/** sha256 of every file under the deploy dirs and units of every host (to prove nothing changed). */
export function remoteChecksums(info: LabInfo): string {
  return info.hosts
    .map((h) => `${h}\n${sshOk(info, h, "sudo -n sh -c 'find /tidb-deploy /etc/systemd/system -maxdepth 4 -type f \\( -path \"*/conf/*\" -o -path \"*/scripts/*\" -o -path \"*/tls/*\" -o -name \"*.service\" \\) -print0 | sort -z | xargs -0 sha256sum'")}`)
    .join('\n');
}

/** systemd's ActiveEnterTimestamp of every unit of the cluster (to prove nothing restarted). */
export function unitStartTimes(info: LabInfo, t: Topology): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of t.hosts) {
    const units = t.instances.filter((i) => i.host === h.host).map((i) => i.unit);
    const r = sshOk(info, h.host, `systemctl show -p Id -p ActiveEnterTimestampMonotonic ${units.join(' ')}`);
    for (const block of r.trim().split(/\n\s*\n/)) {
      const id = /Id=(.*)/.exec(block)?.[1];
      const ts = /ActiveEnterTimestampMonotonic=(\d+)/.exec(block)?.[1];
      if (id) out[`${h.host}/${id}`] = ts ?? '';
    }
  }
  return out;
}
