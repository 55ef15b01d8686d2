/**
 * The one seam between tiseal and a host. Tasks talk only to this interface; ssh2 and the
 * in-memory fake implement it, so most tests open no socket.
 */
export interface ExecOptions {
  /** Run through `sudo -n` (never prompts; fails clearly when the user lacks passwordless sudo). */
  sudo?: boolean;
  /** Kill the command and reject after this long. */
  timeoutMs?: number;
  /** Bytes written to the command's stdin, then EOF. */
  stdin?: string | Buffer;
  /** Resolve even on non-zero exit instead of throwing RemoteCommandError. */
  allowFailure?: boolean;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface PutOptions {
  /** File mode, e.g. 0o600. */
  mode?: number;
  /** `user` or `user:group`; applied with sudo chown. */
  owner?: string;
  /** Write a temp file beside the target and rename it over (default true). */
  atomic?: boolean;
  /**
   * Write with root rights: the content goes to a root-side script on stdin, which never follows
   * a symlink and always renames a temp file over the target (`atomic` is ignored).
   */
  sudo?: boolean;
}

export interface ReplaceOptions {
  /** Where the current file is copied first (kept if there already: the first backup of a run wins). */
  backup: string;
  /** Key material: the backup copy is 0600. */
  private: boolean;
  mode?: number;
  owner?: string;
  /** Make the file's directory first (missing components too) with this owner and mode. */
  dir?: { owner: string; mode: number };
}

export interface RemoteStat {
  exists: boolean;
  isFile: boolean;
  isDirectory: boolean;
  mode: number; // permission bits, e.g. 0o600
  size: number;
  uid: number;
  gid: number;
  owner?: string;
  /** Group name, when known. */
  group?: string;
  mtimeMs: number;
}

export interface Executor {
  /** `host` as named in the topology (used in messages). */
  readonly host: string;
  /** The login user, when known (used in suggestions, e.g. for sudo). */
  readonly user?: string;
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** content: data to write; or `{ localPath }` to upload a local file. */
  put(content: string | Buffer | { localPath: string }, remotePath: string, opts?: PutOptions): Promise<void>;
  /** Read a remote file. Rejects when it does not exist (use stat first). */
  get(remotePath: string, opts?: { sudo?: boolean }): Promise<Buffer>;
  stat(remotePath: string, opts?: { sudo?: boolean }): Promise<RemoteStat>;
  /** `stat` with sudo of several paths in one round trip (the same answers, in order; rejects on the first refused path). */
  statMany(remotePaths: string[]): Promise<RemoteStat[]>;
  /*
   * The root-side operations below (and get/stat/put with sudo) never follow a symlink another
   * user could have planted, on the way or at the end: they reject with UnsafeRemotePathError.
   */
  /** mkdir -p as root; created components and the directory itself get `owner` (`user:group`) and `mode`. */
  ensureDir(dir: string, opts: { owner: string; mode: number }): Promise<void>;
  /**
   * Copy `file` to `backup` as root unless it is missing or `backup` exists (the first backup of a
   * run is kept). New backup dirs are root-owned 0700; `private` (key material) copies are 0600.
   * Resolves true when a copy was made.
   */
  backup(file: string, backup: string, opts?: { private?: boolean }): Promise<boolean>;
  /**
   * Replace `file` as root: `dir` made first when given (like ensureDir), the current file backed
   * up (like backup), then `content` written (like put with sudo) — one root-side round trip.
   */
  replace(content: string | Buffer, file: string, opts: ReplaceOptions): Promise<void>;
  /** rm -rf as root (a missing path is fine). */
  remove(remotePath: string): Promise<void>;
  close(): Promise<void>;
}

/** Hands out one Executor per host for a whole run. */
export interface ExecutorPool {
  get(host: string, port?: number): Promise<Executor>;
  /**
   * Close one host's connection when the caller needs no more of it, so a wide read-only fan-out
   * holds only its width open; a later get() reconnects. Nobody else may be using that host.
   */
  release?(host: string, port?: number): Promise<void>;
  closeAll(): Promise<void>;
}
