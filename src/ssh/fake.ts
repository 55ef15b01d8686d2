/**
 * In-memory Executor for unit tests of code above the SSH layer: a small filesystem with
 * owners, modes and inodes, the same put/get/stat semantics as SshExecutor (atomic replace,
 * kept mode/owner, sudo), exec dispatched to registered handlers, a handful of built-in file
 * commands, and a log of every call so tests can assert exactly what would run on a host.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RemoteCommandError, SshError } from '../errors';
import { CommandTimeoutError, RemoteFileError, UnsafeRemotePathError } from './errors';
import type { ExecOptions, ExecResult, Executor, ExecutorPool, PutOptions, RemoteStat, ReplaceOptions } from './executor';
import { sudoError } from './sudo';

interface FakeEntryBase {
  mode: number;
  owner: string;
  group: string;
  mtimeMs: number;
  /** Changes when a file is replaced (atomic put, mv over), not when rewritten in place. */
  ino: number;
}
export interface FakeFile extends FakeEntryBase {
  kind: 'file';
  content: Buffer;
}
export interface FakeDir extends FakeEntryBase {
  kind: 'dir';
}
/** A symlink: root-side operations refuse it unless root planted it (like remoteScripts' tiseal_cd). */
export interface FakeLink extends FakeEntryBase {
  kind: 'link';
  target: string;
}
export type FakeEntry = FakeFile | FakeDir | FakeLink;

export type FakeCall =
  | { op: 'exec'; command: string; sudo: boolean; stdin?: string; timeoutMs?: number }
  | { op: 'put'; path: string; content: Buffer; opts: PutOptions }
  | { op: 'get'; path: string; sudo: boolean }
  | { op: 'stat'; path: string; sudo: boolean }
  | { op: 'ensureDir'; path: string; owner: string; mode: number }
  | { op: 'backup'; path: string; backup: string; private: boolean }
  | { op: 'remove'; path: string }
  | { op: 'close' };

export interface FakeExecContext {
  executor: FakeExecutor;
  sudo: boolean;
  stdin?: Buffer;
  /** The RegExp match when the handler was registered with a RegExp. */
  match: RegExpMatchArray | null;
}
/** A string is stdout (exit 0); an object fills in stdout/stderr/code; nothing means success. */
export type FakeExecReply = string | Partial<ExecResult> | void;
export type FakeExecHandler = (command: string, ctx: FakeExecContext) => FakeExecReply | Promise<FakeExecReply>;
export type FakeExecMatcher = RegExp | ((command: string) => boolean);

export interface FakeExecutorOptions {
  /** Login user. Default `tidb` (a TiUP-style deploy user); `root` bypasses permission checks. */
  user?: string;
  /** Whether `sudo -n` works (passwordless sudo). Default true. */
  sudo?: boolean;
  /** Clock for mtimes. Default Date.now. */
  now?: () => number;
}

const UNHANDLED = Symbol('unhandled');

export class FakeExecutor implements Executor {
  readonly host: string;
  readonly user: string;
  sudoAllowed: boolean;
  readonly calls: FakeCall[] = [];
  readonly files = new Map<string, FakeEntry>();
  closed = false;
  private readonly handlers: Array<{ matcher: FakeExecMatcher; handler: FakeExecHandler }> = [];
  private readonly now: () => number;
  private readonly ids = new Map<string, number>([['root', 0]]);
  private nextIno = 1;

  constructor(host: string, opts: FakeExecutorOptions = {}) {
    this.host = host;
    this.user = opts.user ?? 'tidb';
    this.sudoAllowed = opts.sudo ?? true;
    this.now = opts.now ?? Date.now;
    if (this.user !== 'root') this.ids.set(this.user, 1000);
    this.files.set('/', { kind: 'dir', mode: 0o755, owner: 'root', group: 'root', mtimeMs: this.now(), ino: this.nextIno++ });
    this.addDir(this.home(), { owner: this.user, mode: 0o700 });
  }

  // ---- arranging and inspecting state -------------------------------------------------------

  home(): string {
    return this.user === 'root' ? '/root' : `/home/${this.user}`;
  }

  /** Later registrations win, so a test can override a shared default. */
  onExec(matcher: FakeExecMatcher, handler: FakeExecHandler): this {
    this.handlers.unshift({ matcher, handler });
    return this;
  }

  /** Create a file (and missing parent directories, owned by root). */
  addFile(p: string, content: string | Buffer, o: { mode?: number; owner?: string; group?: string; mtimeMs?: number } = {}): this {
    const abs = this.abs(p);
    this.addDir(path.posix.dirname(abs));
    const owner = o.owner ?? 'root';
    this.files.set(abs, {
      kind: 'file',
      content: Buffer.from(content),
      mode: o.mode ?? 0o644,
      owner,
      group: o.group ?? owner,
      mtimeMs: o.mtimeMs ?? this.now(),
      ino: this.nextIno++,
    });
    return this;
  }

  /** Create a directory and its missing parents (like `mkdir -p`); options apply to the last one. */
  addDir(p: string, o: { mode?: number; owner?: string; group?: string } = {}): this {
    const abs = this.abs(p);
    const parts = abs.split('/').filter(Boolean);
    let cur = '';
    parts.forEach((part, i) => {
      cur += `/${part}`;
      const existing = this.files.get(cur);
      const last = i === parts.length - 1;
      if (!existing) {
        const owner = last ? o.owner ?? 'root' : 'root';
        this.files.set(cur, { kind: 'dir', mode: last ? o.mode ?? 0o755 : 0o755, owner, group: last ? o.group ?? owner : 'root', mtimeMs: this.now(), ino: this.nextIno++ });
      } else if (existing.kind !== 'dir') {
        throw new Error(`FakeExecutor(${this.host}): ${cur} is a file, not a directory`);
      }
    });
    return this;
  }

  /** Plant a symlink (the deploy user's by default, as an attacker would). */
  addSymlink(p: string, target: string, o: { owner?: string } = {}): this {
    const abs = this.abs(p);
    this.addDir(path.posix.dirname(abs));
    const owner = o.owner ?? this.user;
    this.files.set(abs, { kind: 'link', target, mode: 0o777, owner, group: owner, mtimeMs: this.now(), ino: this.nextIno++ });
    return this;
  }

  entry(p: string): FakeEntry | undefined {
    return this.files.get(this.abs(p));
  }

  file(p: string): FakeFile | undefined {
    const e = this.entry(p);
    return e?.kind === 'file' ? e : undefined;
  }

  readText(p: string): string | undefined {
    return this.file(p)?.content.toString('utf8');
  }

  /** The commands passed to exec, in order (sudo ones prefixed with `sudo `). */
  commands(): string[] {
    return this.calls.flatMap((c) => (c.op === 'exec' ? [c.sudo ? `sudo ${c.command}` : c.command] : []));
  }

  // ---- Executor --------------------------------------------------------------------------------

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const stdin = opts.stdin === undefined ? undefined : Buffer.from(opts.stdin);
    this.calls.push({ op: 'exec', command, sudo: !!opts.sudo, stdin: stdin?.toString('utf8'), timeoutMs: opts.timeoutMs });
    this.assertOpen();
    const shown = opts.sudo ? `sudo ${command}` : command;
    if (opts.sudo && !this.sudoAllowed) throw this.sudoRefused(command);
    let reply = this.dispatch(command, { executor: this, sudo: !!opts.sudo, stdin, match: null });
    if (reply === UNHANDLED) reply = this.builtin(command, !!opts.sudo);
    if (reply === UNHANDLED) {
      throw new Error(`FakeExecutor(${this.host}): no handler for \`${shown}\`; register one with onExec()`);
    }
    let value: FakeExecReply;
    if (opts.timeoutMs !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<typeof UNHANDLED>((resolve) => {
        timer = setTimeout(() => resolve(UNHANDLED), opts.timeoutMs);
      });
      const r = await Promise.race([Promise.resolve(reply), timeout]);
      clearTimeout(timer);
      if (r === UNHANDLED) throw new CommandTimeoutError(this.host, shown, opts.timeoutMs, '');
      value = r;
    } else {
      value = await reply;
    }
    const result: ExecResult =
      typeof value === 'string'
        ? { stdout: value, stderr: '', code: 0 }
        : { stdout: value?.stdout ?? '', stderr: value?.stderr ?? '', code: value?.code === undefined ? 0 : value.code };
    if (result.code !== 0 && !opts.allowFailure) throw new RemoteCommandError(this.host, shown, result.code, result.stderr);
    return result;
  }

  async put(content: string | Buffer | { localPath: string }, remotePath: string, opts: PutOptions = {}): Promise<void> {
    const data =
      typeof content === 'object' && !Buffer.isBuffer(content) ? await fs.promises.readFile(content.localPath) : Buffer.from(content);
    this.calls.push({ op: 'put', path: remotePath, content: data, opts: { ...opts } });
    this.assertOpen();
    const atomic = opts.atomic ?? true;
    const elevated = !!opts.sudo || opts.owner !== undefined;
    if (elevated && !this.sudoAllowed) throw this.sudoRefused(`install … ${remotePath}`);
    const who = elevated ? 'root' : this.user;
    const abs = elevated ? this.rootPath(remotePath) : this.abs(remotePath);
    const dir = this.files.get(path.posix.dirname(abs));
    if (!dir || dir.kind !== 'dir') throw new RemoteFileError(this.host, 'write', remotePath, 'ENOENT', 'No such file or directory');
    const existing = this.files.get(abs);
    if (existing?.kind === 'dir') throw new RemoteFileError(this.host, 'write', remotePath, 'EISDIR', 'Is a directory');
    const inPlace = !atomic && existing !== undefined;
    if (inPlace ? !this.can(who, existing, 0o2) : !this.can(who, dir, 0o2)) {
      throw new RemoteFileError(this.host, 'write', remotePath, 'EACCES', 'Permission denied', `the login user ${this.user} lacks permission; use sudo for this path`);
    }
    let owner: string;
    let group: string;
    if (elevated) {
      // Mirrors installScript: explicit owner, else the replaced file's, else root (install's default).
      if (opts.owner !== undefined) {
        const [u, g] = opts.owner.split(':');
        owner = u;
        group = g ?? 'root'; // `chown user` leaves install's root group
      } else {
        owner = existing?.owner ?? 'root';
        group = existing?.group ?? 'root';
      }
    } else if (inPlace) {
      owner = existing!.owner;
      group = existing!.group;
    } else {
      owner = this.user;
      group = this.user;
    }
    this.files.set(abs, {
      kind: 'file',
      content: data,
      mode: opts.mode ?? existing?.mode ?? 0o644,
      owner,
      group,
      mtimeMs: this.now(),
      ino: inPlace ? existing!.ino : this.nextIno++,
    });
  }

  async get(remotePath: string, opts: { sudo?: boolean } = {}): Promise<Buffer> {
    this.calls.push({ op: 'get', path: remotePath, sudo: !!opts.sudo });
    this.assertOpen();
    if (opts.sudo && !this.sudoAllowed) throw this.sudoRefused(`cat -- ${remotePath}`);
    const e = this.files.get(opts.sudo ? this.rootPath(remotePath) : this.abs(remotePath));
    if (!e) throw new RemoteFileError(this.host, 'read', remotePath, 'ENOENT', 'No such file or directory');
    if (e.kind === 'dir') throw new RemoteFileError(this.host, 'read', remotePath, 'EISDIR', 'Is a directory');
    if (e.kind === 'link') throw new RemoteFileError(this.host, 'read', remotePath, 'EIO', 'the fake does not follow symlinks for the login user');
    if (!this.can(opts.sudo ? 'root' : this.user, e, 0o4)) {
      throw new RemoteFileError(this.host, 'read', remotePath, 'EACCES', 'Permission denied', `the login user ${this.user} lacks permission; use sudo for this path`);
    }
    return Buffer.from(e.content);
  }

  async stat(remotePath: string, opts: { sudo?: boolean } = {}): Promise<RemoteStat> {
    this.calls.push({ op: 'stat', path: remotePath, sudo: !!opts.sudo });
    this.assertOpen();
    if (opts.sudo && !this.sudoAllowed) throw this.sudoRefused(`stat -- ${remotePath}`);
    const e = this.files.get(opts.sudo ? this.rootPath(remotePath) : this.abs(remotePath));
    if (!e) return { exists: false, isFile: false, isDirectory: false, mode: 0, size: 0, uid: -1, gid: -1, mtimeMs: 0 };
    return {
      exists: true,
      isFile: e.kind === 'file',
      isDirectory: e.kind === 'dir',
      mode: e.mode,
      size: e.kind === 'file' ? e.content.length : 4096,
      uid: this.id(e.owner),
      gid: this.id(e.group),
      owner: e.owner,
      group: e.group,
      // Whole seconds, as the real stat reports them.
      mtimeMs: Math.floor(e.mtimeMs / 1000) * 1000,
    };
  }

  async statMany(remotePaths: string[]): Promise<RemoteStat[]> {
    const out: RemoteStat[] = [];
    for (const p of remotePaths) out.push(await this.stat(p, { sudo: true }));
    return out;
  }

  async ensureDir(dir: string, opts: { owner: string; mode: number }): Promise<void> {
    this.calls.push({ op: 'ensureDir', path: dir, owner: opts.owner, mode: opts.mode });
    this.rootOp('create directory', dir);
    const [u, g] = opts.owner.split(':');
    let cur = '';
    for (const part of this.rootPath(dir, true).split('/').filter(Boolean)) {
      cur += `/${part}`;
      const e = this.files.get(cur);
      if (e && e.kind !== 'dir') throw new RemoteFileError(this.host, 'create directory', dir, 'ENOENT', `${cur}: Not a directory`);
      if (!e) this.files.set(cur, { kind: 'dir', mode: opts.mode, owner: u, group: g || u, mtimeMs: this.now(), ino: this.nextIno++ });
    }
    const last = this.files.get(cur)!;
    last.owner = u;
    last.group = g || u;
    last.mode = opts.mode;
  }

  async backup(file: string, backup: string, opts: { private?: boolean } = {}): Promise<boolean> {
    this.calls.push({ op: 'backup', path: file, backup, private: !!opts.private });
    this.rootOp('back up', file);
    const src = this.files.get(this.rootPath(file));
    if (!src) return false;
    if (src.kind !== 'file') throw new RemoteFileError(this.host, 'back up', file, 'EIO', `${file}: not a regular file`);
    const dst = this.rootPath(backup, true);
    if (this.files.has(dst)) return false;
    // Missing backup dirs: root's, 0700 (the run dir and below).
    let cur = '';
    for (const part of path.posix.dirname(dst).split('/').filter(Boolean)) {
      cur += `/${part}`;
      if (!this.files.has(cur)) this.files.set(cur, { kind: 'dir', mode: 0o700, owner: 'root', group: 'root', mtimeMs: this.now(), ino: this.nextIno++ });
    }
    const dir = this.files.get(cur)!;
    if (dir.owner !== 'root' || (dir.mode & 0o022) !== 0) throw new UnsafeRemotePathError(this.host, path.posix.dirname(backup), 'is writable by a user other than root');
    this.files.set(dst, { ...src, content: Buffer.from(src.content), mode: opts.private ? 0o600 : src.mode, ino: this.nextIno++ });
    return true;
  }

  /** The three operations SshExecutor does in one script, logged as the three calls. */
  async replace(content: string | Buffer, file: string, opts: ReplaceOptions): Promise<void> {
    if (opts.dir) await this.ensureDir(path.posix.dirname(file), opts.dir);
    await this.backup(file, opts.backup, { private: opts.private });
    await this.put(content, file, { mode: opts.mode, owner: opts.owner, atomic: true, sudo: true });
  }

  async remove(remotePath: string): Promise<void> {
    this.calls.push({ op: 'remove', path: remotePath });
    this.rootOp('remove', remotePath);
    const abs = this.rootPath(remotePath, true, true);
    for (const k of [...this.files.keys()]) if (k === abs || k.startsWith(`${abs}/`)) this.files.delete(k);
  }

  async close(): Promise<void> {
    this.calls.push({ op: 'close' });
    this.closed = true;
  }

  // ---- internals -------------------------------------------------------------------------------

  private assertOpen(): void {
    if (this.closed) throw new SshError(`${this.host}:22`, 'connection lost (the executor was closed)', 'a task used a host after closeAll()');
  }

  private rootOp(op: string, p: string): void {
    this.assertOpen();
    if (!this.sudoAllowed) throw this.sudoRefused(`${op} ${p}`);
  }

  /**
   * The path root reaches, walked like remoteScripts' tiseal_cd: a symlink is followed only when
   * root planted it (root owns it and its directory, which nobody else can write); any other one,
   * on the way or as the last name (unless `leafLinkOk`: rm removes the link itself), is refused.
   */
  private rootPath(p: string, _create = false, leafLinkOk = false): string {
    const parts = this.abs(p).split('/').filter(Boolean);
    let cur = '/';
    for (let i = 0; i < parts.length; i++) {
      const next = path.posix.join(cur, parts[i]);
      const e = this.files.get(next);
      if (e?.kind === 'link' && !(leafLinkOk && i === parts.length - 1)) {
        const dir = this.files.get(cur)!;
        const rootLink = e.owner === 'root' && dir.owner === 'root' && (dir.mode & 0o022) === 0 && i < parts.length - 1;
        if (!rootLink) throw new UnsafeRemotePathError(this.host, next, 'is a symlink');
        cur = path.posix.resolve(cur, e.target);
        continue;
      }
      cur = next;
    }
    return cur;
  }

  private sudoRefused(command: string): RemoteCommandError {
    return sudoError(this.host, command, 1, 'sudo: a password is required\n', this.user);
  }

  private dispatch(command: string, ctx: FakeExecContext): ReturnType<FakeExecHandler> | typeof UNHANDLED {
    for (const { matcher, handler } of this.handlers) {
      if (matcher instanceof RegExp) {
        const m = command.match(matcher);
        if (m) return handler(command, { ...ctx, match: m });
      } else if (matcher(command)) {
        return handler(command, ctx);
      }
    }
    return UNHANDLED;
  }

  private abs(p: string): string {
    return path.posix.resolve(this.home(), p);
  }

  private id(name: string): number {
    let v = this.ids.get(name);
    if (v === undefined) {
      v = 1001 + this.ids.size;
      this.ids.set(name, v);
    }
    return v;
  }

  /** Unix permission check on one entry (no ancestor traversal); `bit` is 4 read / 2 write. */
  private can(who: string, e: FakeEntry, bit: number): boolean {
    if (who === 'root') return true;
    if (e.owner === who) return (e.mode & (bit << 6)) !== 0;
    if (e.group === who) return (e.mode & (bit << 3)) !== 0;
    return (e.mode & bit) !== 0;
  }

  // ---- built-in commands ----------------------------------------------------------------------

  /** Runs `cmd [&& | || | ;] cmd …` made of the built-ins, or returns UNHANDLED. */
  private builtin(command: string, sudo: boolean): ExecResult | typeof UNHANDLED {
    const tokens = lexShell(command);
    if (!tokens) return UNHANDLED;
    const pipeline: Array<{ argv: string[]; op: string }> = [];
    let argv: string[] = [];
    for (const t of tokens) {
      if (t.op) {
        if (argv.length === 0) return UNHANDLED;
        pipeline.push({ argv, op: t.op });
        argv = [];
      } else {
        argv.push(t.word!);
      }
    }
    if (argv.length) pipeline.push({ argv, op: '' });
    if (pipeline.length === 0 || !pipeline.every((s) => BUILTINS.has(s.argv[0]))) return UNHANDLED;
    let status: number | null = 0;
    let stdout = '';
    let stderr = '';
    let run = true;
    for (const step of pipeline) {
      if (run) {
        const result = this.runBuiltin(step.argv, sudo ? 'root' : this.user);
        stdout += result.stdout;
        stderr += result.stderr;
        status = result.code;
      }
      // Like sh: a skipped command leaves the status of the last one that ran.
      if (step.op === '&&') run = status === 0;
      else if (step.op === '||') run = status !== 0;
      else run = true;
    }
    return { stdout, stderr, code: status };
  }

  private runBuiltin(argv: string[], who: string): ExecResult {
    const ok = (stdout = ''): ExecResult => ({ stdout, stderr: '', code: 0 });
    const fail = (stderr: string, code = 1): ExecResult => ({ stdout: '', stderr: `${stderr}\n`, code });
    const [cmd, ...rest] = argv;
    const { flags, args } = splitFlags(cmd, rest);
    switch (cmd) {
      case 'true':
        return ok();
      case 'false':
        return fail('', 1);
      case 'test':
      case '[': {
        const a = cmd === '[' ? (args[args.length - 1] === ']' ? args.slice(0, -1) : null) : args;
        if (!a) return fail('[: missing ]', 2);
        const negate = a[0] === '!';
        const [op, p] = negate ? a.slice(1) : a;
        const e = p === undefined ? undefined : this.files.get(this.abs(p));
        let r: boolean;
        if (op === '-e') r = !!e;
        else if (op === '-f') r = e?.kind === 'file';
        else if (op === '-d') r = e?.kind === 'dir';
        else if (op === '-s') r = e?.kind === 'file' && e.content.length > 0;
        else return fail(`${cmd}: unsupported expression in the fake: ${a.join(' ')}`, 2);
        return { stdout: '', stderr: '', code: r !== negate ? 0 : 1 };
      }
      case 'cat': {
        let out = '';
        for (const p of args) {
          const e = this.files.get(this.abs(p));
          if (!e) return { stdout: out, stderr: `cat: ${p}: No such file or directory\n`, code: 1 };
          if (e.kind !== 'file') return { stdout: out, stderr: `cat: ${p}: Is a directory or a symlink (not followed by the fake)\n`, code: 1 };
          if (!this.can(who, e, 0o4)) return { stdout: out, stderr: `cat: ${p}: Permission denied\n`, code: 1 };
          out += e.content.toString('utf8');
        }
        return ok(out);
      }
      case 'mkdir': {
        const modeArg = flags.get('m');
        const mode = modeArg === undefined ? 0o755 : parseOctal(modeArg);
        if (mode === undefined) return fail(`mkdir: invalid mode '${modeArg}'`);
        for (const p of args) {
          const abs = this.abs(p);
          const e = this.files.get(abs);
          if (e) {
            if (flags.has('p') && e.kind === 'dir') continue;
            return fail(`mkdir: cannot create directory '${p}': File exists`);
          }
          const parentPath = path.posix.dirname(abs);
          if (!this.files.get(parentPath)) {
            if (!flags.has('p')) return fail(`mkdir: cannot create directory '${p}': No such file or directory`);
            const r = this.runBuiltin(['mkdir', '-p', parentPath], who);
            if (r.code !== 0) return r;
          }
          const parent = this.files.get(parentPath)!;
          if (parent.kind !== 'dir') return fail(`mkdir: cannot create directory '${p}': Not a directory`);
          if (!this.can(who, parent, 0o2)) return fail(`mkdir: cannot create directory '${p}': Permission denied`);
          this.files.set(abs, { kind: 'dir', mode, owner: who, group: who, mtimeMs: this.now(), ino: this.nextIno++ });
        }
        return ok();
      }
      case 'rm': {
        for (const p of args) {
          const abs = this.abs(p);
          const e = this.files.get(abs);
          if (!e) {
            if (flags.has('f')) continue;
            return fail(`rm: cannot remove '${p}': No such file or directory`);
          }
          if (e.kind === 'dir' && !flags.has('r') && !flags.has('R')) return fail(`rm: cannot remove '${p}': Is a directory`);
          if (!this.can(who, this.files.get(path.posix.dirname(abs))!, 0o2)) return fail(`rm: cannot remove '${p}': Permission denied`);
          for (const k of [...this.files.keys()]) if (k === abs || k.startsWith(`${abs}/`)) this.files.delete(k);
        }
        return ok();
      }
      case 'mv':
      case 'cp': {
        if (args.length !== 2) return fail(`${cmd}: the fake supports exactly SOURCE DEST`);
        const [src, dstArg] = args.map((a) => this.abs(a));
        const e = this.files.get(src);
        if (!e) return fail(`${cmd}: cannot stat '${args[0]}': No such file or directory`);
        let dst = dstArg;
        if (this.files.get(dst)?.kind === 'dir') dst = path.posix.join(dst, path.posix.basename(src));
        const dstDir = this.files.get(path.posix.dirname(dst));
        if (!dstDir || dstDir.kind !== 'dir') return fail(`${cmd}: cannot create '${args[1]}': No such file or directory`);
        if (!this.can(who, dstDir, 0o2)) return fail(`${cmd}: cannot create '${args[1]}': Permission denied`);
        if (cmd === 'mv') {
          if (!this.can(who, this.files.get(path.posix.dirname(src))!, 0o2)) return fail(`mv: cannot move '${args[0]}': Permission denied`);
          for (const k of [...this.files.keys()]) {
            if (k === src || k.startsWith(`${src}/`)) {
              const v = this.files.get(k)!;
              this.files.delete(k);
              this.files.set(dst + k.slice(src.length), v);
            }
          }
          return ok();
        }
        if (e.kind !== 'file') return fail(`cp: -r not specified; omitting directory '${args[0]}'`);
        if (!this.can(who, e, 0o4)) return fail(`cp: cannot open '${args[0]}' for reading: Permission denied`);
        const old = this.files.get(dst);
        if (old?.kind === 'dir') return fail(`cp: cannot overwrite directory '${args[1]}'`);
        const keep = flags.has('p');
        this.files.set(dst, {
          kind: 'file',
          content: Buffer.from(e.content),
          // Like cp(1): an existing destination is rewritten in place and keeps its attributes unless -p.
          mode: keep ? e.mode : old ? old.mode : e.mode & ~0o022,
          owner: keep && who === 'root' ? e.owner : old ? old.owner : who,
          group: keep && who === 'root' ? e.group : old ? old.group : who,
          mtimeMs: keep ? e.mtimeMs : this.now(),
          ino: old ? old.ino : this.nextIno++,
        });
        return ok();
      }
      case 'chmod': {
        const [modeArg, ...paths] = args;
        const mode = parseOctal(modeArg ?? '');
        if (mode === undefined) return fail(`chmod: the fake supports octal modes only, got '${modeArg}'`);
        for (const p of paths) {
          const e = this.files.get(this.abs(p));
          if (!e) return fail(`chmod: cannot access '${p}': No such file or directory`);
          if (who !== 'root' && e.owner !== who) return fail(`chmod: changing permissions of '${p}': Operation not permitted`);
          e.mode = mode;
        }
        return ok();
      }
      case 'chown': {
        const [spec, ...paths] = args;
        if (!spec) return fail('chown: missing operand');
        const [u, g] = spec.split(':');
        for (const p of paths) {
          const e = this.files.get(this.abs(p));
          if (!e) return fail(`chown: cannot access '${p}': No such file or directory`);
          if (who !== 'root') return fail(`chown: changing ownership of '${p}': Operation not permitted`);
          if (u) e.owner = u;
          if (g) e.group = g;
        }
        return ok();
      }
      default:
        return fail(`${cmd}: not a fake built-in`, 127);
    }
  }
}

const BUILTINS = new Set(['true', 'false', 'test', '[', 'cat', 'mkdir', 'rm', 'mv', 'cp', 'chmod', 'chown']);

function parseOctal(s: string): number | undefined {
  return /^[0-7]{3,4}$/.test(s) ? parseInt(s, 8) : undefined;
}

/** Short flags (`-pf`, `-m 0755`) up to `--` or the first operand. */
function splitFlags(cmd: string, rest: string[]): { flags: Map<string, string | undefined>; args: string[] } {
  const flags = new Map<string, string | undefined>();
  if (cmd === 'test' || cmd === '[') return { flags, args: rest };
  let i = 0;
  for (; i < rest.length; i++) {
    const a = rest[i];
    if (a === '--') {
      i++;
      break;
    }
    if (!/^-[A-Za-z]+$/.test(a)) break;
    for (const c of a.slice(1)) {
      if (cmd === 'mkdir' && c === 'm') flags.set('m', rest[++i]);
      else flags.set(c, undefined);
    }
  }
  return { flags, args: rest.slice(i) };
}

/**
 * Minimal POSIX shell lexer: words with '…', "…" and \ quoting, and the operators `&&`, `||`, `;`.
 * Returns null for anything else a real shell would interpret (pipes, redirections,
 * expansions), which the fake refuses rather than misinterprets.
 */
export function lexShell(command: string): Array<{ word?: string; op?: string }> | null {
  const out: Array<{ word?: string; op?: string }> = [];
  let i = 0;
  const n = command.length;
  while (i < n) {
    const c = command[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      i++;
      continue;
    }
    if (command.startsWith('&&', i) || command.startsWith('||', i)) {
      out.push({ op: command.slice(i, i + 2) });
      i += 2;
      continue;
    }
    if (c === ';') {
      out.push({ op: ';' });
      i++;
      continue;
    }
    let word = '';
    while (i < n && !/[\s;]/.test(command[i]) && !command.startsWith('&&', i) && !command.startsWith('||', i)) {
      const ch = command[i];
      if (ch === "'") {
        const end = command.indexOf("'", i + 1);
        if (end < 0) return null;
        word += command.slice(i + 1, end);
        i = end + 1;
      } else if (ch === '"') {
        i++;
        while (i < n && command[i] !== '"') {
          if (command[i] === '$' || command[i] === '`') return null;
          if (command[i] === '\\' && i + 1 < n && '"\\$`\n'.includes(command[i + 1])) i++;
          word += command[i++];
        }
        if (i >= n) return null;
        i++;
      } else if (ch === '\\') {
        if (i + 1 >= n) return null;
        word += command[i + 1];
        i += 2;
      } else if ('|&<>$`(){}*?~#'.includes(ch)) {
        return null;
      } else {
        word += ch;
        i++;
      }
    }
    out.push({ word });
  }
  return out;
}

/** Hands out one FakeExecutor per host:port; `setup` arranges each new host (files, handlers). */
export class FakePool implements ExecutorPool {
  readonly executors = new Map<string, FakeExecutor>();
  /** How often each host:port was asked for (a pool must not reconnect per task). */
  readonly gets = new Map<string, number>();
  closed = false;

  constructor(
    private readonly setup?: (executor: FakeExecutor) => void,
    private readonly defaults: FakeExecutorOptions = {},
  ) {}

  /** The executor for a host, created on first use; lets a test arrange it before the code runs. */
  host(host: string, port = 22): FakeExecutor {
    const key = `${host}:${port}`;
    let ex = this.executors.get(key);
    if (!ex) {
      ex = new FakeExecutor(host, this.defaults);
      this.setup?.(ex);
      this.executors.set(key, ex);
    }
    return ex;
  }

  async get(host: string, port = 22): Promise<FakeExecutor> {
    if (this.closed) throw new SshError(`${host}:${port}`, 'the SSH pool is already closed', 'a task ran after closeAll()');
    const key = `${host}:${port}`;
    this.gets.set(key, (this.gets.get(key) ?? 0) + 1);
    this.events.push(`get ${key}`);
    return this.host(host, port);
  }

  /** get and release calls in order (`get host:port` / `release host:port`): what a fan-out held open when. */
  readonly events: string[] = [];

  async release(host: string, port = 22): Promise<void> {
    this.events.push(`release ${host}:${port}`);
  }

  async closeAll(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.executors.values()].map((ex) => ex.close()));
  }
}
