/** Executor over one ssh2 connection: exec channels, SFTP for files, sudo via `sudo -n`. */
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { Duplex } from 'stream';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { RemoteCommandError, SshError, stderrTail } from '../errors';
import { shq } from '../util/shell';
import type { ByteCounters, OpenConnection } from './connect';
import { CommandTimeoutError, RemoteFileError, UnsafeRemotePathError } from './errors';
import type { ExecOptions, ExecResult, Executor, PutOptions, RemoteStat, ReplaceOptions } from './executor';
import { backupScript, ensureDirScript, installScript, MISSING_EXIT, parseStatOutput, removeScript, replaceScript, safeReadScript, safeStatManyScript, safeStatScript, statCommand, UNSAFE_EXIT, UNSAFE_TAG } from './remoteScripts';
import { Semaphore } from './semaphore';
import { isSudoPasswordError, sudoError, wrapSudo } from './sudo';

export interface RawExecResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
  signal?: string;
}

/** Grace after `timeoutMs` for the remote `timeout` to report before the channel is dropped. */
/** Retries of an exec channel refused by sshd while it frees finished sessions (5 ms doubling: 1.3 s in all). */
const OPEN_RETRIES = 8;
const TIMEOUT_GRACE_MS = 5_000;
/** Seconds between the remote TERM and KILL on timeout. */
const KILL_AFTER_S = 2;
/** Exit codes of coreutils `timeout` when it fired (TERM worked / needed KILL). */
const TIMEOUT_CODES = new Set([124, 137]);
/** What stat answers for a path that does not exist. */
const MISSING: RemoteStat = { exists: false, isFile: false, isDirectory: false, mode: 0, size: 0, uid: -1, gid: -1, mtimeMs: 0 };
/** How long tiseal waits for one root-side file script (stat, read, back up, write) before giving up on it. */
export const ROOT_SCRIPT_DEADLINE_MS = 120_000;

const SFTP_CODES: Record<number, string> = { 2: 'ENOENT', 3: 'EACCES', 4: 'EIO', 8: 'ENOTSUP' };

function sftpCode(err: unknown): string {
  const c = (err as { code?: unknown }).code;
  return typeof c === 'number' ? SFTP_CODES[c] ?? 'EIO' : typeof c === 'string' ? c : 'EIO';
}

/** errno-like code from coreutils' error text (commands run with LC_ALL=C or an English locale). */
function errnoFromStderr(stderr: string): string {
  if (/No such file/.test(stderr)) return 'ENOENT';
  if (/Permission denied|Operation not permitted/.test(stderr)) return 'EACCES';
  if (/Is a directory/.test(stderr)) return 'EISDIR';
  if (/Not a directory/.test(stderr)) return 'ENOTDIR';
  if (/No space left/.test(stderr)) return 'ENOSPC';
  return 'EIO';
}

function rand(): string {
  return randomBytes(6).toString('hex');
}

function seconds(ms: number): string {
  return String(Math.max(ms, 1) / 1000);
}

export interface SshExecutorInit {
  /** Host as named in the topology. */
  host: string;
  user: string;
  /** `host:port` (and jump) for connection messages. */
  label: string;
  connection: OpenConnection;
  concurrency: number;
}

export class SshExecutor implements Executor {
  readonly host: string;
  readonly user: string;
  readonly label: string;
  readonly counters: ByteCounters;
  /** Commands run (exec, and the exec half of sudo file operations). */
  execs = 0;
  /** Sum of exec round-trip times, channel open request to channel close. */
  rttTotalMs = 0;
  private readonly client: Client;
  private readonly channels: Semaphore;
  private sftpSession?: Promise<SFTPWrapper>;
  private closed = false;
  private closeHooks: Array<() => unknown> = [];
  private closedPromise: Promise<void>;

  constructor(init: SshExecutorInit) {
    this.host = init.host;
    this.user = init.user;
    this.label = init.label;
    this.client = init.connection.client;
    this.counters = init.connection.counters;
    this.channels = new Semaphore(init.concurrency);
    this.closedPromise = new Promise((resolve) => {
      this.client.once('close', () => {
        this.closed = true;
        resolve();
        for (const hook of this.closeHooks.splice(0)) Promise.resolve().then(hook).catch(() => undefined);
      });
    });
    // After 'ready' a dead peer (keepalive timeout, reset) surfaces here; calls then fail cleanly.
    this.client.on('error', () => {
      this.closed = true;
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Run `fn` once the connection is gone (closed by us or lost). */
  onClose(fn: () => unknown): void {
    if (this.closed) void Promise.resolve().then(fn);
    else this.closeHooks.push(fn);
  }

  private lost(what: string): SshError {
    return new SshError(this.label, `connection lost ${what}`, 'the host may have rebooted or the network dropped; check the host and run again (completed steps are kept)');
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const r = await this.execBuffer(command, opts);
    return { stdout: r.stdout.toString('utf8'), stderr: r.stderr.toString('utf8'), code: r.code };
  }

  /** Like exec, with stdout/stderr as bytes (binary-safe; used by `get` with sudo). */
  async execBuffer(command: string, opts: ExecOptions & { deadlineMs?: number } = {}): Promise<RawExecResult> {
    const shown = opts.sudo ? `sudo ${command}` : command;
    let wire: string;
    if (opts.timeoutMs !== undefined) {
      // Signals over SSH are ignored for root logins, so the host enforces the deadline itself:
      // coreutils `timeout` runs the command in its own process group and kills all of it.
      const timed = `timeout -k ${KILL_AFTER_S} ${seconds(opts.timeoutMs)} sh -c ${shq(command)}`;
      wire = opts.sudo ? `sudo -n -- ${timed}` : timed;
    } else {
      wire = opts.sudo ? wrapSudo(command) : command;
    }
    const r = await this.runChannel(wire, shown, opts);
    const elapsedMs = r.elapsedMs;
    this.execs++;
    this.rttTotalMs += elapsedMs;
    const stderr = r.stderr.toString('utf8');
    if (opts.sudo && isSudoPasswordError(r.code, stderr)) throw sudoError(this.host, command, r.code, stderr, this.user);
    if (r.timedOut || (opts.timeoutMs !== undefined && r.code !== null && TIMEOUT_CODES.has(r.code) && elapsedMs >= opts.timeoutMs - 50)) {
      throw new CommandTimeoutError(this.host, shown, opts.timeoutMs ?? opts.deadlineMs!, stderr);
    }
    if (r.code !== 0 && !opts.allowFailure) throw new RemoteCommandError(this.host, shown, r.code, stderr);
    return { stdout: r.stdout, stderr: r.stderr, code: r.code, signal: r.signal };
  }

  private async runChannel(wire: string, shown: string, opts: ExecOptions & { deadlineMs?: number }): Promise<RawExecResult & { timedOut: boolean; elapsedMs: number }> {
    if (this.closed) throw this.lost(`before running \`${shown}\``);
    const release = await this.channels.acquire();
    const started = process.hrtime.bigint(); // after the wait for a free channel: a true round trip
    try {
      return await new Promise((resolve, reject) => {
        // Listeners go on in the channel's callback itself: a fast command's exit and close can
        // come in the same read as the exec reply, before any later tick.
        const attach = (stream: ClientChannel): void => {
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let code: number | null | undefined;
          let signal: string | undefined;
          let timedOut = false;
          let timer: NodeJS.Timeout | undefined;
          // timeoutMs: the host's `timeout` reports first, this is the fallback; deadlineMs: ours alone.
          const after = opts.timeoutMs !== undefined ? opts.timeoutMs + TIMEOUT_GRACE_MS : opts.deadlineMs;
          if (after !== undefined) {
            timer = setTimeout(() => {
              timedOut = true;
              stream.close(); // the host did not report in time: drop the channel
            }, after);
          }
          stream.on('data', (d: Buffer) => out.push(d));
          stream.stderr.on('data', (d: Buffer) => errOut.push(d));
          stream.on('exit', (c: number | null, sig?: string) => {
            code = c;
            signal = sig ?? undefined;
          });
          stream.on('close', () => {
            if (timer) clearTimeout(timer);
            if (code === undefined && !timedOut) {
              reject(this.lost(`while running \`${shown}\``));
              return;
            }
            const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
            resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(errOut), code: code ?? null, signal, timedOut, elapsedMs });
          });
          stream.on('error', () => undefined); // surfaced through 'close' without exit status
          if (opts.stdin !== undefined) stream.end(opts.stdin);
          else stream.end(); // EOF at once, like `ssh host cmd </dev/null`
        };
        this.openExec(wire, shown, attach).catch(reject);
      });
    } finally {
      release();
    }
  }

  /**
   * Open an exec channel. sshd frees a finished session only in its channel garbage collection,
   * after it has read our close (OpenSSH channels.c channel_garbage_collect, session.c
   * session_close_by_channel), so an open sent right after a close can meet a full MaxSessions
   * and be refused ("open failed") although our count is below it: such a refusal is retried
   * briefly (about 1.3 s in all). A lost connection is not.
   */
  private async openExec(wire: string, shown: string, attach: (stream: ClientChannel) => void): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await new Promise<void>((resolve, reject) =>
          this.client.exec(wire, (err, stream) => {
            if (err) return reject(err);
            attach(stream);
            resolve();
          }),
        );
      } catch (err) {
        if (this.closed) throw this.lost(`before running \`${shown}\``);
        const refused = typeof (err as { reason?: unknown }).reason === 'number';
        if (!refused || attempt >= OPEN_RETRIES) {
          throw new SshError(this.label, `cannot open a channel for \`${shown}\`: ${(err as Error).message}`, 'sshd may limit sessions (MaxSessions); lower the concurrency', err as Error);
        }
        await new Promise((r) => setTimeout(r, 5 * 2 ** attempt));
      }
    }
  }

  private sftp(): Promise<SFTPWrapper> {
    if (this.closed) return Promise.reject(this.lost('before opening SFTP'));
    if (!this.sftpSession) {
      this.sftpSession = new Promise((resolve, reject) => {
        this.client.sftp((err, sftp) => {
          if (err) {
            this.sftpSession = undefined;
            reject(new SshError(this.label, `cannot open an SFTP session: ${err.message}`, 'the host\'s sshd must enable the sftp subsystem (Subsystem sftp … in sshd_config)', err));
          } else {
            sftp.on('close', () => {
              this.sftpSession = undefined;
            });
            resolve(sftp);
          }
        });
      });
    }
    return this.sftpSession;
  }

  private fileError(op: string, remotePath: string, err: unknown): RemoteFileError | SshError {
    if (err instanceof RemoteFileError || err instanceof SshError) return err;
    if (this.closed) return this.lost(`during ${op} ${remotePath}`);
    const code = sftpCode(err);
    const hint = code === 'EACCES' ? `the login user ${this.user} lacks permission; use sudo for this path` : undefined;
    return new RemoteFileError(this.host, op, remotePath, code, (err as Error).message, hint);
  }

  /** Create `remotePath` with O_EXCL (never follows a planted file) and write `content` to it. */
  private async writeNew(sftp: SFTPWrapper, remotePath: string, content: string | Buffer | { localPath: string }, mode: number, flags: 'wx' | 'w'): Promise<void> {
    const handle = await new Promise<Buffer>((resolve, reject) =>
      sftp.open(remotePath, flags, { mode }, (err, h) => (err ? reject(err) : resolve(h))),
    );
    try {
      const write = (buf: Buffer, pos: number) =>
        new Promise<void>((resolve, reject) => sftp.write(handle, buf, 0, buf.length, pos, (err) => (err ? reject(err) : resolve())));
      let pos = 0;
      if (typeof content === 'object' && !Buffer.isBuffer(content)) {
        for await (const chunk of fs.createReadStream(content.localPath)) {
          await write(chunk as Buffer, pos);
          pos += (chunk as Buffer).length;
        }
      } else {
        const buf = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
        if (buf.length > 0) await write(buf, 0);
        pos = buf.length;
      }
    } finally {
      await new Promise<void>((resolve) => sftp.close(handle, () => resolve()));
    }
  }

  private sftpCall<T>(fn: (cb: (err: Error | null | undefined, v?: T) => void) => void): Promise<T> {
    return new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v as T))));
  }

  async put(content: string | Buffer | { localPath: string }, remotePath: string, opts: PutOptions = {}): Promise<void> {
    if (typeof content === 'object' && !Buffer.isBuffer(content)) {
      await fs.promises.access(content.localPath, fs.constants.R_OK); // fail locally before touching the host
    }
    const atomic = opts.atomic ?? true;
    const dir = path.posix.dirname(remotePath);
    const tmp = `${dir === '/' ? '' : dir}/.${path.posix.basename(remotePath)}.tiseal-tmp-${rand()}`;
    if (opts.sudo || opts.owner !== undefined) {
      const data = typeof content === 'object' && !Buffer.isBuffer(content) ? await fs.promises.readFile(content.localPath) : Buffer.from(content);
      await this.rootScript('write', remotePath, installScript({ target: remotePath, mode: opts.mode, owner: opts.owner }), data);
      return;
    }
    const sftp = await this.sftp();
    try {
      if (!atomic) {
        await this.writeNew(sftp, remotePath, content, opts.mode ?? 0o644, 'w');
        if (opts.mode !== undefined) await this.sftpCall((cb) => sftp.chmod(remotePath, opts.mode!, cb));
        return;
      }
      let mode = opts.mode;
      if (mode === undefined) {
        const st = await this.sftpCall<{ mode: number }>((cb) => sftp.stat(remotePath, cb)).catch(() => undefined);
        mode = st ? st.mode & 0o7777 : 0o644;
      }
      try {
        // Private while being written, final mode before it becomes visible under the real name.
        await this.writeNew(sftp, tmp, content, 0o600, 'wx');
        await this.sftpCall((cb) => sftp.chmod(tmp, mode!, cb));
        await this.rename(sftp, tmp, remotePath);
      } catch (err) {
        await this.sftpCall((cb) => sftp.unlink(tmp, cb)).catch(() => undefined);
        throw err;
      }
    } catch (err) {
      throw this.fileError('write', remotePath, err);
    }
  }

  /** rename(2) semantics (replace the target) via OpenSSH's posix-rename; plain SFTP rename refuses to overwrite. */
  private async rename(sftp: SFTPWrapper, from: string, to: string): Promise<void> {
    try {
      await this.sftpCall((cb) => sftp.ext_openssh_rename(from, to, cb));
    } catch (err) {
      if (!/not supported/i.test((err as Error).message)) throw err;
      await this.exec(`mv -f -- ${shq(from)} ${shq(to)}`);
    }
  }

  async get(remotePath: string, opts: { sudo?: boolean } = {}): Promise<Buffer> {
    if (opts.sudo) return this.rootScript('read', remotePath, safeReadScript(remotePath));
    const sftp = await this.sftp();
    try {
      return await this.sftpCall<Buffer>((cb) => sftp.readFile(remotePath, cb));
    } catch (err) {
      throw this.fileError('read', remotePath, err);
    }
  }

  async stat(remotePath: string, opts: { sudo?: boolean } = {}): Promise<RemoteStat> {
    if (opts.sudo) {
      const out = await this.rootScript('stat', remotePath, safeStatScript(remotePath), undefined, true);
      return out === undefined
        ? { ...MISSING }
        : { exists: true, ...parseStatOutput(out.toString('utf8')) };
    }
    const r = await this.exec(statCommand(remotePath), { allowFailure: true });
    if (r.code === 0) return { exists: true, ...parseStatOutput(r.stdout) };
    if (/No such file or directory|Not a directory/.test(r.stderr)) {
      return { ...MISSING };
    }
    const code = /Permission denied/.test(r.stderr) ? 'EACCES' : 'EIO';
    throw new RemoteFileError(this.host, 'stat', remotePath, code, r.stderr.trim() || `stat exited ${r.code}`, code === 'EACCES' ? 'pass { sudo: true } for paths the login user cannot see' : undefined);
  }

  async statMany(remotePaths: string[]): Promise<RemoteStat[]> {
    if (remotePaths.length === 0) return [];
    const out = (await this.rootScript('stat', remotePaths[0], safeStatManyScript(remotePaths))).toString('utf8');
    const byIndex = new Map(out.split('\n').filter(Boolean).map((l) => [Number(l.slice(0, l.indexOf(' '))), l.slice(l.indexOf(' ') + 1)]));
    return remotePaths.map((p, i) => {
      const line = byIndex.get(i);
      if (line === undefined) throw new RemoteFileError(this.host, 'stat', p, 'EIO', 'no answer for this path');
      return line === '-' ? { ...MISSING } : { exists: true, ...parseStatOutput(line) };
    });
  }

  async ensureDir(dir: string, opts: { owner: string; mode: number }): Promise<void> {
    await this.rootScript('create directory', dir, ensureDirScript(dir, opts.owner, opts.mode));
  }

  async backup(file: string, backup: string, opts: { private?: boolean } = {}): Promise<boolean> {
    const out = await this.rootScript('back up', file, backupScript(file, backup, { private: !!opts.private }));
    return /backed-up/.test(out.toString('utf8'));
  }

  async replace(content: string | Buffer, file: string, opts: ReplaceOptions): Promise<void> {
    await this.rootScript('write', file, replaceScript({ target: file, ...opts }), Buffer.from(content));
  }

  async remove(remotePath: string): Promise<void> {
    await this.rootScript('remove', remotePath, removeScript(remotePath), undefined, true);
  }

  /**
   * Run one of remoteScripts' root-side scripts; its refusals become UnsafeRemotePathError, a
   * missing path ENOENT (or undefined with `missingOk`), other failures a RemoteFileError for the
   * path (not the multi-line script).
   */
  private async rootScript(op: string, remotePath: string, script: string, stdin?: Buffer, missingOk?: false): Promise<Buffer>;
  private async rootScript(op: string, remotePath: string, script: string, stdin: Buffer | undefined, missingOk: true): Promise<Buffer | undefined>;
  private async rootScript(op: string, remotePath: string, script: string, stdin?: Buffer, missingOk = false): Promise<Buffer | undefined> {
    let r: RawExecResult;
    try {
      // A deadline of our own (no `timeout` process per script): a root-side file operation that
      // does not answer in time hangs on something in the path (a hung mount), never on a FIFO
      // (reads open with O_NONBLOCK, only regular files are read). `remove` may take long on a big tree.
      r = await this.execBuffer(script, { sudo: true, allowFailure: true, stdin: stdin ?? '', deadlineMs: op === 'remove' ? undefined : ROOT_SCRIPT_DEADLINE_MS });
    } catch (err) {
      if (err instanceof CommandTimeoutError) {
        throw new RemoteFileError(this.host, op, remotePath, 'ETIMEDOUT', `no answer in ${ROOT_SCRIPT_DEADLINE_MS / 1000} s`, 'look for a hung mount or a stuck process on that path on the host; nothing after it was done');
      }
      if (err instanceof RemoteCommandError && err.suggestion) {
        throw sudoError(this.host, `${op} ${remotePath}`, err.code, err.stderr, this.user);
      }
      throw err;
    }
    if (r.code === 0) return r.stdout;
    const stderr = r.stderr.toString('utf8');
    if (r.code === UNSAFE_EXIT) {
      const line = stderr.split('\n').find((l) => l.startsWith(UNSAFE_TAG)) ?? '';
      const m = /^\S+ (.*): ([^:]*)$/.exec(line);
      throw new UnsafeRemotePathError(this.host, m ? m[1] : remotePath, m ? m[2] : 'is a symlink');
    }
    if (r.code === MISSING_EXIT) {
      if (missingOk) return undefined;
      throw new RemoteFileError(this.host, op, remotePath, 'ENOENT', 'No such file or directory');
    }
    throw new RemoteFileError(this.host, op, remotePath, errnoFromStderr(stderr), stderrTail(stderr) || `exit ${r.code}`);
  }

  /** A TCP stream from the host to `host:port` (ProxyJump). */
  forwardOut(host: string, port: number): Promise<Duplex> {
    if (this.closed) return Promise.reject(this.lost(`before forwarding to ${host}:${port}`));
    return new Promise((resolve, reject) => {
      this.client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => (err ? reject(err) : resolve(stream)));
    });
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.client.end();
      await Promise.race([this.closedPromise, new Promise((r) => setTimeout(r, 2_000).unref())]);
      if (!this.closed) this.client.destroy();
      this.closed = true;
    }
  }
}
