/**
 * `npm run demo`: boot the default lab (real Debian hosts, a plaintext TiUP-style cluster), convert
 * it to TLS with tiseal, and show the result. The lab stays up afterwards so you can look around.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { labUp } from './index';
import { defaultTopologyFile } from './options';

const ROOT = path.join(__dirname, '..', '..');
const say = (s: string) => process.stdout.write(`\n\x1b[1m== ${s}\x1b[0m\n`);

function tiseal(env: NodeJS.ProcessEnv, args: string[]): number {
  process.stdout.write(`$ tiseal ${args.join(' ')}\n`);
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'tiseal.js'), ...args], { env, stdio: 'inherit' });
  return r.status ?? 1;
}

async function main(): Promise<number> {
  say('1. Boot the lab: 5 Debian hosts (systemd-nspawn, real sshd + systemd), a plaintext TiDB cluster laid out by TiUP rules');
  const lab = await labUp({ topology: defaultTopologyFile(), log: (m) => process.stdout.write(`   ${m}\n`) });
  const env = {
    ...process.env,
    TISEAL_IDENTITY_FILE: lab.identityFile,
    TISEAL_KNOWN_HOSTS: lab.knownHostsFile,
    TISEAL_SSH_USER: lab.user,
    TISEAL_STATE_DIR: lab.stateDir,
  };
  const topo = lab.topologyFile;

  say('2. The topology, as tiseal resolves it (TiUP defaults for ports and dirs)');
  if (tiseal(env, ['topology', 'check', topo]) !== 0) return 1;

  say('3. Turn TLS on: preflight, PD scaled in to one member, certificates, staged files, tiered restarts, PD peer URLs, PD scaled back out');
  if (tiseal(env, ['tls', 'enable', topo, '--yes']) !== 0) return 1;

  say('4. What every port serves now (live TLS probes with the cluster CA)');
  const status = tiseal(env, ['tls', 'status', topo]);

  say('Look around');
  const tls = path.join(lab.stateDir, 'clusters', path.basename(topo).replace(/\.ya?ml$/, ''), 'tls');
  process.stdout.write(
    [
      `   openssl s_client -connect 10.77.0.11:2379 -CAfile ${tls}/ca.crt -cert ${tls}/client.crt -key ${tls}/client.key </dev/null`,
      `   curl --cacert ${tls}/ca.crt --cert ${tls}/client.crt --key ${tls}/client.key https://10.77.0.11:2379/pd/api/v1/members`,
      `   ETCDCTL_API=3 etcdctl --endpoints https://10.77.0.11:2379 --cacert ${tls}/ca.crt --cert ${tls}/client.crt --key ${tls}/client.key member list`,
      `   ssh -i ${lab.identityFile} -o UserKnownHostsFile=${lab.knownHostsFile} ${lab.user}@10.77.0.11`,
      `   set -a; . ${lab.envFile}; set +a; node bin/tiseal.js tls disable ${topo} --yes   # back to plaintext`,
      '   npm run lab -- down                                  # stop the lab hosts',
      '',
    ].join('\n'),
  );
  return status;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`error: ${(e as Error).message}\n`);
    if ((e as { suggestion?: string }).suggestion) process.stderr.write(`  suggestion: ${(e as { suggestion?: string }).suggestion}\n`);
    process.exit(1);
  },
);
