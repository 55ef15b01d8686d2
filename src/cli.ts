import * as path from 'path';
import { runRecord } from './util/run-record';
import { appendAuditLog, auditRecord, CHANGING_VERBS } from './state/audit-log';
import { terminalMessage } from './util/terminal';
import { Command, CommanderError, Option } from 'commander';
import { addExamples, commandPath, helpConfig, sharedOption } from './cli-help';
import { TisealError, UsageError } from './errors';
import { clusterNameFor, GlobalOptions, toGlobalOptions } from './options';
import { writeStatsFile } from './util/run-stats';
import { CHANGE_CONCURRENCY, READ_CONCURRENCY } from './util/concurrency';

const SCHEDULE_HELP =
  'overlap: stop everything at once, start PD, then the rest as soon as PD listens (shortest outage) | tiers: restart tier by tier, each tier gated on health | stop-all: TiUP\'s schedule, stop everything, then start tier by tier with TiUP\'s waits';

/** A verb's implementation: gets the topology path, its own flags and the shared options; returns the exit code. */
export type CommandRunner = (topologyFile: string, flags: Record<string, unknown>, opts: GlobalOptions) => Promise<number>;

const env = (name: string) => `TISEAL_${name}`;

/** Verbs that restart TiKV/TiFlash one store at a time, evicting its leaders first (TiUP's flag name and default). */
const transferTimeout = () => new Option('--transfer-timeout <seconds>', "how long to wait for PD to move a store's leaders away before restarting it anyway").default('600').env(env('TRANSFER_TIMEOUT'));

/** Options every cluster command accepts (with TISEAL_* environment equivalents for scripts); help lists them under Global Options. */
function addSharedOptions(cmd: Command, { json = false } = {}): Command {
  const shared = (flags: string, description: string) => sharedOption(new Option(flags, description));
  cmd
    .addOption(shared('-y, --yes', 'do not ask for confirmation').env(env('YES')))
    .addOption(shared('--dry-run', 'show the plan and the file diffs, change nothing').env(env('DRY_RUN')))
    .addOption(shared('-i, --identity-file <file...>', 'SSH private key(s)').env(env('IDENTITY_FILE')))
    .addOption(shared('--ssh-user <user>', 'SSH login user (default: topology global.user)').env(env('SSH_USER')))
    .addOption(shared('--ssh-port <port>', 'SSH port for hosts without ssh_port (default: topology)').env(env('SSH_PORT')))
    .addOption(shared('--known-hosts <file>', 'known_hosts used to verify host keys').default('~/.ssh/known_hosts').env(env('KNOWN_HOSTS')))
    .addOption(shared('--accept-new-host-keys', 'trust unknown host keys on first use and record them').env(env('ACCEPT_NEW_HOST_KEYS')))
    .addOption(shared('--ssh-config <file>', 'OpenSSH client config to honour (default ~/.ssh/config)').env(env('SSH_CONFIG')))
    .addOption(shared('--state-dir <dir>', 'local state: CA, journal, lock').default('~/.tiseal').env(env('STATE_DIR')))
    .addOption(shared('--cluster-name <name>', 'cluster name (default: topology file base name)').env(env('CLUSTER_NAME')))
    .addOption(shared('-c, --concurrency <n>', `hosts worked on in parallel (default ${CHANGE_CONCURRENCY}; read-only verbs: ${READ_CONCURRENCY})`).env(env('CONCURRENCY')))
    .addOption(shared('--no-tiup-meta', "leave TiUP's meta.yaml and tls/ alone (default: keep enable_tls and the CA there in step, adopt TiUP's CA)").env(env('NO_TIUP_META')))
    .addOption(shared('--stats-file <file>', 'write what the run measured (SSH handshakes and round trips, step and restart times, memory) as JSON').env(env('STATS_FILE')));
  if (json) cmd.addOption(new Option('--json', 'print machine-readable JSON').env(env('JSON')));
  return cmd;
}

type Loader = () => Promise<CommandRunner>;

function action(load: Loader) {
  return async (topologyFile: string, flags: Record<string, unknown>, cmd: Command) => {
    const run = await load();
    runRecord.reset(); // one record per run, also when main() runs several in one process (tests)
    let code: number | undefined;
    let failure: unknown;
    try {
      code = await run(topologyFile, flags, toGlobalOptions(flags));
      process.exitCode = code;
    } catch (e) {
      code = e instanceof TisealError ? e.exitCode : 1;
      failure = e;
      throw e;
    } finally {
      if (flags.statsFile) writeStatsFile(String(flags.statsFile), commandPath(cmd), code, failure);
      recordRun(commandPath(cmd), topologyFile, flags, code ?? 1, failure);
    }
  };
}

/** A changing run (not a dry run) leaves one record in <state-dir>/audit.log and syslog. */
function recordRun(verb: string, topologyFile: string, flags: Record<string, unknown>, exitCode: number, failure: unknown): void {
  // Only a run that began to change something (an action of its plan ran, failed or not) or handed
  // out what it signed (cert client) is recorded: input refused up front or by preflight (flags,
  // topology, a bring-your-own CA, an unreachable host) leaves the state dir untouched.
  const started = runRecord.changing || (runRecord.issued.length > 0 && exitCode === 0 && failure === undefined);
  if (!CHANGING_VERBS.has(verb) || flags.dryRun || !started) return;
  let stateDir: string;
  let clusterName: string;
  try {
    const opts = toGlobalOptions(flags);
    stateDir = opts.stateDir;
    clusterName = clusterNameFor(topologyFile, opts.clusterName);
  } catch {
    return; // bad flags: the run was refused before it could change anything
  }
  const rec = auditRecord({ stateDir, verb, argv: invokedWith ?? process.argv.slice(2), exitCode, failure, clusterName });
  for (const w of appendAuditLog(stateDir, rec)) process.stderr.write(`warning: ${w}\n`);
}

/** package.json sits two levels up from dist/src/ and one up from src/ (ts-jest). */
function packageVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      return require(path.join(__dirname, rel)).version as string;
    } catch {
      /* try the next layout */
    }
  }
  return 'unknown';
}

export function buildProgram(): Command {
  const program = new Command('tiseal')
    .description('Secure a running TiUP-deployed TiDB cluster over SSH: TLS, client certs, rotation, encryption at rest')
    .version(packageVersion(), '-V, --version')
    .showSuggestionAfterError(true)
    .configureHelp(helpConfig);

  const topology = program.command('topology').description('work with TiUP topology files');
  topology
    .command('check')
    .description('parse and validate a topology; print every resolved instance')
    .argument('<topology.yaml>')
    .option('--json', 'print the resolved topology as JSON')
    .action(action(async () => (await import('./commands/topology-check')).run));

  const tls = program.command('tls').description('TLS between cluster components');
  addSharedOptions(tls.command('enable').description('turn TLS on across the cluster (resumable)').argument('<topology.yaml>'))
    .option('--keep-pd <name>', 'PD member to keep while PD is scaled in (default: the leader)')
    .option('--ca-cert <pem>', 'bring your own CA certificate')
    .option('--ca-key <pem>', 'private key of --ca-cert')
    .option('--ca-chain <pem>', 'chain to the root for an intermediate --ca-cert')
    .option('--verify-cn', 'restrict every component to the certificate CNs of its legitimate callers')
    .option('--extra-san <san...>', 'extra SAN for every leaf, or host=san1,san2 for one host')
    .option('--cert-days <days>', 'leaf certificate validity in days', '365')
    .option('--ca-days <days>', 'CA validity in days when tiseal creates it', '3650')
    .option('--key-type <type>', 'rsa (2048 bit, as TiUP) | ecdsa (P-256); without it new keys are rsa and a re-run keeps each certificate\'s type')
    .option('--schedule <schedule>', SCHEDULE_HELP, 'overlap')
    .option('--restart-run', 'ignore the journal of an interrupted run and start over')
    .action(action(async () => (await import('./commands/tls/enable')).run));
  addSharedOptions(tls.command('disable').description('turn TLS off again (also the rollback of a failed enable)').argument('<topology.yaml>'))
    .option('--keep-pd <name>', 'PD member to keep while PD is scaled in (default: the leader)')
    .option('--clean-certificate', 'also delete certificates on hosts and locally (asks again)')
    .option('--schedule <schedule>', SCHEDULE_HELP, 'overlap')
    .option('--restart-run', 'ignore the journal of an interrupted run and start over')
    .action(action(async () => (await import('./commands/tls/disable')).run));
  addSharedOptions(tls.command('status').description('per instance: TLS configured, live, certificate and expiry').argument('<topology.yaml>'), { json: true })
    .action(action(async () => (await import('./commands/tls/status')).run));
  addSharedOptions(tls.command('rotate').description('reissue certificates without restarting components').argument('<topology.yaml>'))
    .option('--ca', 'move to a new CA: trust both, reissue, trust only the new one (two rolling restarts)')
    .option('--cert-days <days>', 'leaf certificate validity in days', '365')
    .option('--ca-days <days>', 'validity of the new CA in days (with --ca)', '3650')
    .option('--key-type <type>', 'rsa (2048 bit, as TiUP) | ecdsa (P-256); without it new keys are rsa and a re-run keeps each certificate\'s type')
    .addOption(transferTimeout())
    .action(action(async () => (await import('./commands/tls/rotate')).run));

  const sqlTls = program.command('sql-tls').description('TLS between MySQL clients and TiDB (its own SQL CA)');
  const sqlCreds = (cmd: Command) =>
    cmd
      .option('--sql-user <user>', 'MySQL user tiseal logs in as to check each TiDB', 'root')
      .option('--sql-password-file <file>', 'file holding that user\'s password (never on the command line)')
      .option('--sql-cert <pem>', 'client certificate to present (users created REQUIRE X509/SUBJECT)')
      .option('--sql-key <pem>', 'key of --sql-cert');
  sqlCreds(addSharedOptions(sqlTls.command('enable').description('offer TLS on every TiDB MySQL port (rolling, one TiDB at a time)').argument('<topology.yaml>')))
    .option('--ca-cert <pem>', 'your own CA bundle for clients (with --cert and --key)')
    .option('--cert <pem>', 'your own server certificate (+ intermediates) for every TiDB')
    .option('--key <pem>', 'key of --cert')
    .option('--extra-san <san...>', 'extra SAN (e.g. the load balancer name), or host=san1,san2 for one host')
    .option('--tls-version <version>', 'minimum TLS version TiDB accepts: TLSv1.2 | TLSv1.3')
    .option('--cert-days <days>', 'server certificate validity in days', '365')
    .option('--ca-days <days>', 'SQL CA validity in days when tiseal creates it', '3650')
    .option('--key-type <type>', 'rsa (2048 bit, as TiUP) | ecdsa (P-256); without it new keys are rsa and a re-run keeps each certificate\'s type')
    .action(action(async () => (await import('./commands/sql-tls')).enable));
  sqlCreds(addSharedOptions(sqlTls.command('rotate').description('new server certificates, reloaded with ALTER INSTANCE RELOAD TLS (no restart)').argument('<topology.yaml>')))
    .option('--ca-cert <pem>', 'your own CA bundle (with --cert and --key, when SQL TLS uses your certificate)')
    .option('--cert <pem>', 'your own new server certificate (+ intermediates) for every TiDB')
    .option('--key <pem>', 'key of --cert')
    .option('--extra-san <san...>', 'extra SAN (e.g. the load balancer name), or host=san1,san2 for one host')
    .option('--cert-days <days>', 'server certificate validity in days', '365')
    .option('--key-type <type>', 'rsa (2048 bit, as TiUP) | ecdsa (P-256); without it new keys are rsa and a re-run keeps each certificate\'s type')
    .action(action(async () => (await import('./commands/sql-tls')).rotate));
  sqlCreds(addSharedOptions(sqlTls.command('require').description('refuse plaintext MySQL logins (require_secure_transport: from TiDB v6.1 cluster-wide and persisted; no restart)').argument('<topology.yaml>')))
    .option('--off', 'accept plaintext logins again')
    .option('--ca-cert <pem>', 'CA bundle TiDB is served with (default: the SQL CA)')
    .action(action(async () => (await import('./commands/sql-tls')).requireTransport));
  sqlCreds(addSharedOptions(sqlTls.command('disable').description('stop offering TLS on the MySQL ports (rolling); certificates stay').argument('<topology.yaml>')))
    .action(action(async () => (await import('./commands/sql-tls')).disable));
  sqlCreds(addSharedOptions(sqlTls.command('status').description('per TiDB: TLS offered, served certificate, versions, require_secure_transport (live)').argument('<topology.yaml>'), { json: true }))
    .action(action(async () => (await import('./commands/sql-tls/status')).run));

  const cert = program.command('cert').description('certificates for people and tools');
  addSharedOptions(cert.command('client').description('issue a client certificate signed by the cluster CA').argument('<topology.yaml>'), { json: true })
    .requiredOption('--cn <name>', 'common name of the client certificate')
    .option('--out <dir>', 'output directory', '.')
    .option('--sql', 'from the SQL CA (sql-tls), for MySQL clients of TiDB, instead of the cluster CA')
    .option('--p12', 'also write a PKCS#12 bundle')
    .option('--p12-password-file <file>', 'password for the PKCS#12 bundle')
    .option('--cert-days <days>', 'validity in days', '365')
    .option('--key-type <type>', 'rsa (2048 bit) | ecdsa (P-256) (default: the key type of the CA)')
    .action(action(async () => (await import('./commands/cert-client')).run));

  const encrypt = program.command('encrypt').description('TiKV / TiFlash encryption at rest');
  addSharedOptions(encrypt.command('enable').description('enable encryption at rest with a rolling restart').argument('<topology.yaml>'))
    .option('--master-key-file <file>', 'use this master key (64 hex chars + newline) instead of generating one')
    .option('--method <method>', 'aes128-ctr | aes192-ctr | aes256-ctr | sm4-ctr', 'aes256-ctr')
    .addOption(transferTimeout())
    .action(action(async () => (await import('./commands/encrypt')).enable));
  addSharedOptions(encrypt.command('disable').description('switch encryption off (method plaintext)').argument('<topology.yaml>'))
    .addOption(transferTimeout())
    .action(action(async () => (await import('./commands/encrypt')).disable));
  addSharedOptions(encrypt.command('rotate-key').description('rotate the master key').argument('<topology.yaml>'))
    .option('--master-key-file <file>', 'the new master key')
    .addOption(transferTimeout())
    .action(action(async () => (await import('./commands/encrypt')).rotateKey));

  sqlCreds(addSharedOptions(program.command('audit').description('security audit: TLS, mTLS, CN lists, expiry, key files, encryption').argument('<topology.yaml>'), { json: true }))
    .option('--fail-on <level>', 'fail | warn', 'fail')
    .action(action(async () => (await import('./commands/audit')).run));

  // Every (sub)command: one-line errors, exit 2 for usage problems, no process.exit inside commander.
  const harden = (cmd: Command) => {
    cmd.exitOverride().configureOutput({ outputError: () => undefined });
    cmd.commands.forEach(harden);
  };
  harden(program);
  addExamples(program);
  return program;
}

export function printError(err: unknown): number {
  if (err instanceof TisealError) {
    process.stderr.write(`error: ${terminalMessage(err.message)}\n`);
    if (err.suggestion) process.stderr.write(`  suggestion: ${terminalMessage(err.suggestion, '    ')}\n`);
    if (process.env.TISEAL_DEBUG && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  process.stderr.write(`error: ${terminalMessage(e?.message ?? String(err))}\n`);
  process.stderr.write(`  suggestion: this is a bug in tiseal; re-run with TISEAL_DEBUG=1 and report the stack trace\n`);
  if (process.env.TISEAL_DEBUG && e?.stack) process.stderr.write(`${e.stack}\n`);
  return 1;
}

/** The arguments of the run main() was given (what the audit record calls its flags). */
let invokedWith: string[] | undefined;

export async function main(argv: string[]): Promise<number> {
  invokedWith = argv;
  const program = buildProgram();
  try {
    process.exitCode = 0;
    await program.parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? 0);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      // A bare group like `tiseal tls` shows its help and exits 2 (missing verb).
      if (err.code === 'commander.executeSubCommandAsync' || err.exitCode === 0) return 0;
      const msg = err.message.replace(/^error: /, '').split('\n')[0];
      return printError(new UsageError(msg, 'see `tiseal --help` (or `tiseal <command> --help`)'));
    }
    return printError(err);
  }
}
