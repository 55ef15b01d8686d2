/**
 * `tiseal cert client <topology> --cn NAME`: a client-only certificate (EKU clientAuth) signed by
 * the cluster CA, for people and tools (pd-ctl, tikv-ctl, tidb-ctl, curl, etcdctl). Local only:
 * reads the CA from the state dir, touches no host, opens no SSH connection.
 */
import fs from 'fs';
import net from 'net';
import path from 'path';
import inquirer from 'inquirer';
import { allowedCallers } from '../components/callers';
import { CertError, UsageError } from '../errors';
import { GlobalOptions, clusterNameFor, expandHome, parseDays, parseKeyType } from '../options';
import { CertStore, IssuedCert, KeyType, issueLeaf, keyTypeOf, writeFileAtomic } from '../pki';
import { buildPkcs12 } from '../pki/pkcs12';
import { ClusterDir } from '../state/cluster-dir';
import { adoptTiupCa } from '../tiup/adopt';
import { readMeta } from '../state/meta';
import { instancesByRole, joinHostPort, loadTopology } from '../topology';
import type { Topology } from '../topology/types';
import { shellJoin } from '../util/shell';
import { tlsPaths } from '../components/tls-paths';

/**
 * Where the CA of a cluster already on TLS is to be found (this command opens no SSH connection,
 * so it names the host file whose fingerprint identifies it rather than reading it).
 */
function hostCaHint(topology: Topology, storeDir: string, cluster: string): string {
  const pd = instancesByRole(topology, 'pd')[0];
  const onHost = pd ? `${pd.host}:${tlsPaths(pd).ca}` : '<deploy dir>/tls/ca.crt on a host';
  return `if TLS is already on (turned on from another machine), copy ca.crt and ca.key from that machine's <state dir>/clusters/${cluster}/tls/ into ${storeDir}: the right CA has the SHA-256 fingerprint of ${onHost} (openssl x509 -noout -fingerprint -sha256 -in ca.crt); \`tiseal tls disable\` needs no CA key; check --state-dir/--cluster-name too`;
}

const CN_RE = /^[A-Za-z0-9._@-]{1,64}$/;
const KEY_MODE = 0o600;
const CERT_MODE = 0o644;

export interface CertClientFlags {
  cn: string;
  /** Absolute output directory. */
  out: string;
  p12: boolean;
  p12PasswordFile?: string;
  certDays: number;
  /** --key-type; default: the CA's own key type. */
  keyType?: KeyType;
}

export interface ClientFiles {
  cert: string;
  key: string;
  ca: string;
  p12?: string;
}

/** What `--json` prints. */
export interface CertClientResult {
  cn: string;
  files: ClientFiles;
  serial: string;
  notAfter: string;
  commands: ToolCommands;
}

export interface ToolCommands {
  pdCtl?: string;
  tikvCtl?: string;
  tidbCtl?: string;
  curl?: string;
  etcdctl?: string;
}

/** Flag checks that need nothing but the command line (exit 2 before anything is read). */
export function parseCertClientFlags(flags: Record<string, unknown>): CertClientFlags {
  const cn = String(flags.cn ?? '');
  if (!CN_RE.test(cn)) {
    throw new UsageError(`invalid --cn '${cn}': 1 to 64 characters of letters, digits and . _ @ - (no spaces)`, 'e.g. --cn ops-alice or --cn backup@dc1');
  }
  // <cn>.crt must never be ca.crt, and a leading dot would hide the files.
  if (cn.toLowerCase() === 'ca' || cn.startsWith('.')) {
    throw new UsageError(`invalid --cn '${cn}': it would name the files ${cn}.crt/${cn}.key, which clash with ca.crt or are hidden`, 'choose another name, e.g. --cn ops-alice');
  }
  const days = parseDays(flags.certDays, '--cert-days', 365);
  const out = String(flags.out ?? '.');
  if (!out) throw new UsageError('--out needs a directory');
  const p12PasswordFile = flags.p12PasswordFile === undefined ? undefined : expandHome(String(flags.p12PasswordFile));
  if (p12PasswordFile !== undefined && !flags.p12) {
    throw new UsageError('--p12-password-file is only used with --p12', 'add --p12 to also write a PKCS#12 bundle, or drop --p12-password-file');
  }
  return { cn, out: path.resolve(expandHome(out)), p12: Boolean(flags.p12), p12PasswordFile, certDays: days, keyType: parseKeyType(flags.keyType) };
}

/** The bundle password: the first line of the file, or a hidden prompt when a person is there. */
export function readPasswordFile(file: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read --p12-password-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, 'give a file whose first line is the PKCS#12 password');
  }
  return checkPassword(text.split(/\r?\n/)[0] ?? '', `--p12-password-file ${file}`);
}

function checkPassword(password: string, source: string): string {
  if (password === '') throw new UsageError(`empty PKCS#12 password (${source})`, 'a bundle with an empty password protects nothing; put a password on the first line');
  // Readers disagree on how non-ASCII passwords become bytes (Java keytool refuses them outright).
  if (!/^[\x20-\x7e]+$/.test(password)) {
    throw new UsageError(`the PKCS#12 password (${source}) has characters outside printable ASCII`, 'use printable ASCII, e.g. `openssl rand -base64 24 > p12.pass`, so every PKCS#12 reader opens the bundle');
  }
  return password;
}

/**
 * Hidden password prompt (typed twice). Belongs in prompt.ts with the other prompts; kept here
 * until it moves. Callers check for a terminal first; `io` replaces stdin/stdout (tests).
 */
export async function promptPassword(message: string, io?: { input: NodeJS.ReadStream; output: NodeJS.WriteStream }): Promise<string> {
  const prompt = io ? inquirer.createPromptModule(io) : inquirer.prompt;
  const validate = (v: string): true | string => {
    try {
      checkPassword(v, 'prompt');
      return true;
    } catch (e) {
      return (e as Error).message;
    }
  };
  for (;;) {
    const { pw } = await prompt<{ pw: string }>([{ type: 'password', name: 'pw', message, mask: '*', validate }]);
    const { again } = await prompt<{ again: string }>([{ type: 'password', name: 'again', message: 'Repeat the password:', mask: '*' }]);
    if (pw === again) return pw;
    (io?.output ?? process.stderr).write('The passwords differ; try again.\n');
  }
}

function ctlVersion(t: Topology): string | undefined {
  const v = t.clusterVersion ?? t.componentVersions.pd ?? t.componentVersions.tidb;
  return v ? (/^\d/.test(v) ? `v${v}` : v) : undefined;
}

/** Ready-to-paste client invocations against the topology's first PD, TiKV and TiDB. */
export function toolCommands(t: Topology, files: Pick<ClientFiles, 'cert' | 'key' | 'ca'>): { commands: ToolCommands; notes: string[] } {
  const ctl = `tiup ctl:${ctlVersion(t) ?? '<cluster-version>'}`;
  const commands: ToolCommands = {};
  const notes: string[] = [];
  if (!ctlVersion(t)) notes.push('the topology names no cluster version: replace <cluster-version> with it (tiup cluster display <name>), e.g. v8.5.1');
  const [pd] = instancesByRole(t, 'pd');
  const [tikv] = instancesByRole(t, 'tikv');
  const [tidb] = instancesByRole(t, 'tidb');
  if (pd) {
    const url = `https://${joinHostPort(pd.host, pd.ports.client_port ?? pd.port)}`;
    commands.pdCtl = `${ctl} pd ${shellJoin(['-u', url, '--cacert', files.ca, '--cert', files.cert, '--key', files.key])}`;
    commands.curl = shellJoin(['curl', '--cacert', files.ca, '--cert', files.cert, '--key', files.key, `${url}/pd/api/v1/members`]);
    commands.etcdctl = `ETCDCTL_API=3 ${shellJoin(['etcdctl', '--endpoints', url, '--cacert', files.ca, '--cert', files.cert, '--key', files.key, 'member', 'list'])}`;
  }
  if (tikv) {
    commands.tikvCtl = `${ctl} tikv ${shellJoin(['--host', joinHostPort(tikv.host, tikv.port), '--ca-path', files.ca, '--cert-path', files.cert, '--key-path', files.key])}`;
  }
  if (tidb) {
    // tidb-ctl (pingcap/tidb-ctl cmd/root.go): --host is an IP, --port the status port, TLS via --ca/--ssl-cert/--ssl-key.
    const status = tidb.ports.status_port ?? 10080;
    commands.tidbCtl = `${ctl} tidb ${shellJoin(['--host', tidb.host.replace(/^\[|\]$/g, ''), '--port', status, '--ca', files.ca, '--ssl-cert', files.cert, '--ssl-key', files.key])}`;
    if (!net.isIP(tidb.host.replace(/^\[|\]$/g, ''))) notes.push(`tidb-ctl --host takes an IP address only; replace ${tidb.host} with its IP`);
  }
  return { commands, notes };
}

function conflictsIn(files: ClientFiles, caPem: string): string[] {
  const taken = [files.cert, files.key, ...(files.p12 ? [files.p12] : [])].filter((f) => fs.existsSync(f));
  // The same CA bundle again is harmless; another cluster's ca.crt in the same dir is not.
  if (fs.existsSync(files.ca) && readOrEmpty(files.ca) !== caPem) taken.push(files.ca);
  return taken;
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Create --out (0700) when it is missing; an existing directory keeps its mode. */
async function ensureOutDir(dir: string): Promise<void> {
  let st: fs.Stats | undefined;
  try {
    st = await fs.promises.stat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (st && !st.isDirectory()) throw new UsageError(`--out ${dir} exists and is not a directory`, 'give a directory (it is created when missing)');
  if (!st) {
    await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
    await fs.promises.chmod(dir, 0o700); // mkdir's mode is filtered by the umask
  }
}

async function writeAll(files: ClientFiles, issued: IssuedCert, p12: Buffer | undefined, overwrite: boolean): Promise<void> {
  const plan: Array<[string, string | Buffer, number]> = [
    [files.key, issued.keyPem, KEY_MODE],
    [files.cert, issued.certPem, CERT_MODE],
    [files.ca, issued.caPem, CERT_MODE],
  ];
  if (files.p12 && p12) plan.push([files.p12, p12, KEY_MODE]);
  const created: string[] = [];
  try {
    for (const [file, data, mode] of plan) {
      const existed = fs.existsSync(file);
      // ca.crt with identical content may stay; everything else refuses to clobber unless asked.
      const replace = overwrite || (file === files.ca && existed);
      await writeFileAtomic(file, data, { mode, overwrite: replace });
      if (!existed) created.push(file);
    }
  } catch (e) {
    // Leave no half set behind: a lone key without its certificate only confuses.
    for (const f of created) await fs.promises.rm(f, { force: true });
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CertError(`a file appeared in ${path.dirname(files.cert)} while tiseal was writing`, { suggestion: 'another process writes there; run again, with --yes to overwrite', cause: e });
    }
    throw e;
  }
}

export async function run(topologyFile: string, rawFlags: Record<string, unknown>, opts: GlobalOptions): Promise<number> {
  if (rawFlags.sql) return (await import('./sql-tls/client')).run(topologyFile, rawFlags, opts); // from the SQL CA, for TiDB's MySQL port
  const flags = parseCertClientFlags(rawFlags);
  let password: string | undefined;
  if (flags.p12) {
    if (flags.p12PasswordFile) password = readPasswordFile(flags.p12PasswordFile);
    else if (!opts.interactive) {
      throw new UsageError('--p12 needs a password and there is no terminal to ask for one', 'pass --p12-password-file FILE (the first line is the password), e.g. after `openssl rand -base64 24 > p12.pass`');
    }
  }

  const topology = loadTopology(topologyFile);
  const clusterName = clusterNameFor(topologyFile, opts.clusterName);
  const store = new CertStore(opts.stateDir, clusterName);
  const adopted = await adoptTiupCa(store, opts);
  if (adopted) process.stderr.write(`note: ${adopted.note}\n`);
  if (!store.hasCA() && !adopted) {
    throw new CertError(`no CA for cluster '${clusterName}' in ${store.dir}`, {
      suggestion: `run \`tiseal tls enable ${topologyFile}\` first (or import a CA with \`tiseal tls enable --ca-cert PEM --ca-key PEM\`); ${hostCaHint(topology, store.dir, clusterName)}`,
    });
  }
  const ca = store.hasCA() ? store.loadCA() : adopted!.tiup.ca; // --dry-run: TiUP's CA read in place

  const base = path.join(flags.out, flags.cn);
  const files: ClientFiles = { cert: `${base}.crt`, key: `${base}.key`, ca: path.join(flags.out, 'ca.crt'), ...(flags.p12 ? { p12: `${base}.p12` } : {}) };
  const taken = conflictsIn(files, ca.bundlePem);
  if (taken.length > 0 && !opts.yes) {
    throw new CertError(`${taken.join(', ')} already exist${taken.length === 1 ? 's' : ''}`, { suggestion: 'pass --yes to overwrite, or choose another --out or --cn' });
  }

  // Issued in memory first: a CertError (e.g. --cert-days beyond the CA's expiry) stops before any prompt or file.
  const keyType = flags.keyType ?? keyTypeOf(ca.cert.x509.publicKey) ?? 'rsa';
  const issued = await issueLeaf(ca, { commonName: flags.cn, usage: 'client', days: flags.certDays, keyType });
  const { commands, notes } = toolCommands(topology, files);
  notes.push(...clusterNotes(opts.stateDir, clusterName, flags.cn, topology));

  if (opts.dryRun) {
    const out = [`would issue a client certificate CN=${flags.cn} for ${flags.certDays} days, signed by '${ca.info.subjectCN}', and write:`];
    for (const f of Object.values(files)) out.push(`  ${f}${taken.includes(f) ? ' (replacing the existing file)' : ''}`);
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  }

  if (flags.p12 && password === undefined) password = await promptPassword(`Password for ${path.basename(files.p12!)}:`);
  const p12 = flags.p12 ? buildPkcs12({ keyPem: issued.keyPem, certPem: issued.certPem, chainPem: issued.caPem, password: password!, friendlyName: flags.cn }) : undefined;

  await ensureOutDir(flags.out);
  await writeAll(files, issued, p12, opts.yes);

  const result: CertClientResult = { cn: flags.cn, files, serial: issued.info.serialHex, notAfter: issued.info.notAfter.toISOString(), commands };
  if (opts.json) {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    for (const n of notes) process.stderr.write(`note: ${n}\n`);
  } else {
    process.stdout.write(renderResult(result, ca.info.subjectCN, notes) + '\n');
  }
  return 0;
}

/** Notes that depend on how the cluster is secured (meta.json) and on the chosen CN. */
function clusterNotes(stateDir: string, clusterName: string, cn: string, t: Topology): string[] {
  const notes: string[] = [];
  const pdVersion = t.componentVersions.pd ?? t.clusterVersion;
  const roles = [...new Set(t.instances.map((i) => i.role))];
  const listedBy = roles.filter((role) => allowedCallers(role, pdVersion)?.cns.includes(cn));
  const metaFile = new ClusterDir(stateDir, clusterName).metaFile;
  let verifyCn = false;
  try {
    verifyCn = Boolean(readMeta(metaFile)?.verifyCn);
  } catch (e) {
    notes.push(`cannot read ${metaFile} (${(e as Error).message}); whether CN allow-lists are on is unknown`);
  }
  if (verifyCn && listedBy.length === 0) {
    notes.push(`this cluster runs with CN allow-lists (--verify-cn): components accept CN '${cn}' only once it is in their lists`);
  }
  if (listedBy.length > 0) {
    notes.push(`CN '${cn}' is a cluster identity (on the CN allow-list of ${listedBy.join(', ')}): with --verify-cn this certificate passes as that identity`);
  }
  return notes;
}

const LABELS: Record<keyof ToolCommands, string> = { pdCtl: 'pd-ctl', tikvCtl: 'tikv-ctl', tidbCtl: 'tidb-ctl', curl: 'curl', etcdctl: 'etcdctl' };

export function renderResult(r: CertClientResult, caCN: string, notes: string[]): string {
  const out = [`Issued client certificate CN=${r.cn} (serial ${r.serial}, expires ${r.notAfter.slice(0, 10)}, signed by '${caCN}')`];
  out.push(`  ${r.files.cert}  certificate (clientAuth only)`);
  out.push(`  ${r.files.key}  private key (0600)`);
  out.push(`  ${r.files.ca}  CA bundle`);
  if (r.files.p12) out.push(`  ${r.files.p12}  PKCS#12: key, certificate and CA chain (0600)`);
  const entries = (Object.keys(LABELS) as Array<keyof ToolCommands>).filter((k) => r.commands[k]);
  if (entries.length > 0) {
    out.push('', 'Use it with:');
    for (const k of entries) out.push(`  # ${LABELS[k]}`, `  ${r.commands[k]}`);
  }
  if (notes.length > 0) out.push('', ...notes.map((n) => `note: ${n}`));
  return out.join('\n');
}

