import { randomBytes } from 'crypto';
import * as fs from 'fs';
import { CertError, localIoError, UsageError } from '../../errors';
import { checkExtraSans, parseDays, parseKeyType, type GlobalOptions } from '../../options';
import { CertStore, RsaKeyPool } from '../../pki';
import { sqlCertStore } from '../../pki/sql-store';
import { sqlTlsSteps } from '../../plans/sql-tls';
import { sqlCredentials } from '../../sql/session';
import { Journal } from '../../state/journal';
import { ClusterLock } from '../../state/lock';
import { readMeta } from '../../state/meta';
import { factKey } from '../../tasks/facts';
import { checkOwnCertificate, sqlCertificatesStep } from '../../tasks/sql-tls/certs';
import { checkRequirable, sessionsByClient, sqlRequireSteps } from '../../tasks/sql-tls/require';
import { checkLiveRequire, checkRotatable, sqlRotateSteps } from '../../tasks/sql-tls/rotate';
import { SqlTlsContext, SqlTlsFlags, tidbInstances } from '../../tasks/sql-tls/context';
import { sqlPreflightStep } from '../../tasks/sql-tls/preflight';
import { buildTaskList } from '../../engine/runner';
import { endRun, newContext, openCluster, preflight, requireConfirmable, runSteps, storedClientTls } from '../cluster';
import { confirm } from '../prompt';

const TLS_VERSION_NAMES = ['TLSv1.2', 'TLSv1.3'];

export function sqlTlsFlags(flags: Record<string, unknown>): SqlTlsFlags {
  const keyType = parseKeyType(flags.keyType);
  const tlsVersion = flags.tlsVersion === undefined ? undefined : String(flags.tlsVersion);
  // TLS 1.0/1.1 are not offered: TiDB accepts them in tls-version, but they are what an audit flags.
  if (tlsVersion !== undefined && !TLS_VERSION_NAMES.includes(tlsVersion)) throw new UsageError(`invalid --tls-version '${tlsVersion}'`, `use one of: ${TLS_VERSION_NAMES.join(', ')} (the minimum version TiDB accepts)`);
  return {
    caCert: flags.caCert as string | undefined,
    cert: flags.cert as string | undefined,
    key: flags.key as string | undefined,
    extraSan: checkExtraSans(flags.extraSan as string[] | undefined),
    tlsVersion,
    certDays: parseDays(flags.certDays, '--cert-days', 365),
    caDays: parseDays(flags.caDays, '--ca-days', 3650),
    keyType,
  };
}

/** The SQL CA bundle clients verify TiDB with: --ca-cert, else tiseal's SQL CA. */
function sqlCaBundle(stateDir: string, cluster: string, caCert?: string): string {
  if (caCert) {
    try {
      return fs.readFileSync(caCert, 'utf8');
    } catch (e) {
      throw localIoError(e, caCert, 'read --ca-cert', 'check the path given to --ca-cert');
    }
  }
  const store = sqlCertStore(stateDir, cluster);
  if (!store.hasCA()) throw new CertError(`no SQL CA for cluster '${cluster}' in ${store.dir}`, { suggestion: 'pass the CA bundle TiDB is served with as --ca-cert, or run `tiseal sql-tls enable` first' });
  return store.loadCA({ allowExpired: true }).bundlePem;
}

function describePlan(ctx: SqlTlsContext, verb: Verb): string {
  const tidbs = tidbInstances(ctx).map((i) => `${i.host}:${i.ports.port}`).join(', ');
  const source = ctx.sql.flags.cert ? `the certificate ${ctx.sql.flags.cert}` : `certificates from the SQL CA in ${sqlCertStore(ctx.opts.stateDir, ctx.cluster.name).dir}`;
  if (verb === 'require' && ctx.sql.want === 'on') {
    return `tiseal will refuse plaintext MySQL logins on every TiDB of '${ctx.cluster.name}' (${tidbs}): SET GLOBAL require_secure_transport = ON now (no restart; from TiDB v6.1 persisted and applied by every TiDB at once, before v6.1 also require-secure-transport = true in tidb.toml).\n  Note: with ssl-ca set, TiDB then demands a client certificate from EVERY TLS client after its next restart or TLS reload (pingcap/tidb#69870); \`sql-tls enable\` and \`rotate\` refuse to restart or reload while it is ON.`;
  }
  if (verb === 'require') return `tiseal will accept plaintext MySQL logins again on every TiDB of '${ctx.cluster.name}' (${tidbs}): SET GLOBAL require_secure_transport = OFF (no restart).`;
  if (verb === 'rotate') return `tiseal will issue new server certificates (${source}) for every TiDB of '${ctx.cluster.name}' (${tidbs}), replace them in place and reload them with ALTER INSTANCE RELOAD TLS; nothing restarts.`;
  return ctx.sql.want === 'on'
    ? `tiseal will offer TLS to MySQL clients on every TiDB of '${ctx.cluster.name}' (${tidbs}) with ${source}.\n  Each TiDB restarts in turn, the next only after the previous one serves TLS and answers SQL; plaintext clients keep working.`
    : `tiseal will stop offering TLS to MySQL clients on every TiDB of '${ctx.cluster.name}' (${tidbs}): require_secure_transport goes OFF first (SET GLOBAL over TLS, before any restart), the ssl-* keys (and a require-secure-transport key) leave tidb.toml.\n  Each TiDB restarts in turn; the SQL certificates stay on the hosts.`;
}

type Verb = 'enable' | 'disable' | 'rotate' | 'require';

/**
 * Shared by every changing sql-tls verb: flags, lock, journal, cluster preflight, the SQL login
 * check, confirmation; then `steps` run under the engine (journal, dry run).
 */
async function runSqlTls(verb: Verb, topologyFile: string, rawFlags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  const want: 'on' | 'off' = verb === 'disable' || (verb === 'require' && rawFlags.off) ? 'off' : 'on';
  const op = `sql-tls-${verb}`;
  const flags = sqlTlsFlags(rawFlags);
  const creds = sqlCredentials(rawFlags);
  if (want === 'on' && verb !== 'require') checkOwnCertificate(flags);
  requireConfirmable(opts);
  const { topology, cluster, pool, close } = await openCluster(topologyFile, opts);
  const lock = new ClusterLock(cluster.lockFile);
  // One RSA key per TiDB, made on worker threads while preflight runs (none with the operator's own certificate).
  const issues = (verb === 'enable' || verb === 'rotate') && want === 'on' && !flags.cert && flags.keyType !== 'ecdsa';
  const keyPool = issues ? new RsaKeyPool(topology.instances.filter((i) => i.role === 'tidb').length) : undefined;
  let notes: string[] | undefined; // set once the run went through
  try {
    if (verb === 'rotate' && !flags.cert && !sqlCertStore(opts.stateDir, cluster.name).hasCA()) {
      throw new CertError(`no SQL CA for cluster '${cluster.name}' in ${sqlCertStore(opts.stateDir, cluster.name).dir}`, { suggestion: 'pass the new pair with --ca-cert, --cert and --key (SQL TLS enabled with your own certificate), or point --state-dir at the directory that holds the SQL CA' });
    }
    if (!opts.dryRun) lock.acquire(`tiseal sql-tls ${verb} ${topologyFile}`);
    const journal = new Journal(cluster.journalFile);
    const open = journal.openRun();
    if (open && !open.op.startsWith('sql-tls-')) {
      throw new UsageError(`an interrupted \`${open.op}\` run (${open.runId}) is not finished`, `finish it first (re-run it, or roll it back), then run sql-tls ${verb}`);
    }
    const store = new CertStore(opts.stateDir, cluster.name);
    const clientTls = storedClientTls(store);
    const meta = readMeta(cluster.metaFile);
    const base = newContext(
      { topology, cluster, pool, opts },
      { want: meta?.enableTls || clientTls ? 'on' : 'off', runId: `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(2).toString('hex')}`, clientTls, flags: { certDays: flags.certDays, caDays: flags.caDays, keyType: flags.keyType }, resuming: false },
    );
    const ctx: SqlTlsContext = Object.assign(base, { sql: { want, flags, creds, clusterTls: false } });
    ctx.keyPool = keyPool;
    await preflight(ctx, false, { clusterTls: false }); // TiDB's MySQL port only
    ctx.sql.clusterTls = tidbInstances(ctx).some((i) => ctx.facts?.instances.get(factKey(i))?.config === 'on');
    if (verb === 'rotate') await checkRotatable(ctx);
    await buildTaskList([sqlPreflightStep], { dryRun: false, renderer: opts.json ? 'silent' : undefined }).run(ctx);
    if (verb === 'rotate') {
      await buildTaskList([sqlCertificatesStep], { dryRun: true, renderer: 'silent' }).run(ctx); // the SQL CA bundle, for a verified session
      await checkLiveRequire(ctx);
    }
    let sessions: string[] = [];
    // disable turns require_secure_transport OFF over TLS first: verified when tiseal holds the SQL CA.
    if (verb === 'disable' && sqlCertStore(opts.stateDir, cluster.name).hasCA()) ctx.sql.caPem = sqlCaBundle(opts.stateDir, cluster.name);
    if (verb === 'require') {
      ctx.sql.caPem = sqlCaBundle(opts.stateDir, cluster.name, rawFlags.caCert as string | undefined);
      await checkRequirable(ctx);
      if (want === 'on') sessions = await sessionsByClient(ctx);
    }
    if (verb === 'require' && want === 'on') process.stdout.write(`Sessions now (TiDB does not show which are plaintext; those will be refused at their next login):\n  ${sessions.join('\n  ')}\n`);
    if (!opts.yes && !opts.dryRun && !(await confirm(`${describePlan(ctx, verb)}\n  Proceed?`))) {
      process.stdout.write('Nothing was changed.\n');
      return 1;
    }
    if (!opts.dryRun && open?.op !== op) journal.append({ type: 'run-start', op, runId: ctx.runId, at: new Date().toISOString(), argv: process.argv.slice(2) });
    const again = `fix the cause and re-run \`tiseal sql-tls ${verb} ${topologyFile}\` to resume${want === 'on' ? `, or run \`tiseal sql-tls disable ${topologyFile}\` to roll back` : ''}`;
    const steps = verb === 'rotate' ? [sqlCertificatesStep, ...sqlRotateSteps(ctx)] : verb === 'require' ? sqlRequireSteps(ctx) : sqlTlsSteps(ctx);
    if (!(await runSteps(steps, ctx, again, { journal }))) return 0;
    journal.append({ type: 'run-done', op, runId: ctx.runId, at: new Date().toISOString() });
    if (verb === 'require') process.stdout.write(`require_secure_transport is ${want === 'on' ? 'ON' : 'OFF'} on every TiDB of cluster '${cluster.name}'; nothing restarted.\n`);
    else if (verb === 'rotate') process.stdout.write(`SQL certificates rotated on every TiDB of cluster '${cluster.name}'; nothing restarted.\n`);
    else process.stdout.write(`SQL TLS is ${want} on every TiDB of cluster '${cluster.name}'${want === 'on' && !flags.cert ? `; clients trust ${sqlCertStore(opts.stateDir, cluster.name).caCertPath}` : ''}.\n`);
    notes = ctx.notes;
    return 0;
  } finally {
    await endRun({ keyPool, lock, close }, notes);
  }
}

export const runSqlTlsSwitch = (want: 'on' | 'off', file: string, flags: Record<string, unknown>, opts: GlobalOptions) => runSqlTls(want === 'on' ? 'enable' : 'disable', file, flags, opts);
export const requireTransport = (file: string, flags: Record<string, unknown>, opts: GlobalOptions) => runSqlTls('require', file, flags, opts);
export const rotate = (file: string, flags: Record<string, unknown>, opts: GlobalOptions) => runSqlTls('rotate', file, flags, opts);
export const enable = (file: string, flags: Record<string, unknown>, opts: GlobalOptions) => runSqlTlsSwitch('on', file, flags, opts);
export const disable = (file: string, flags: Record<string, unknown>, opts: GlobalOptions) => runSqlTlsSwitch('off', file, flags, opts);
