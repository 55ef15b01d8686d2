import { terminalSafe } from './util/terminal';

/**
 * Typed errors. Every error tiseal shows a user carries a suggestion; the CLI prints
 * `error: <message>` and `  suggestion: <suggestion>` and exits with `exitCode`.
 */
export class TisealError extends Error {
  readonly suggestion?: string;
  readonly exitCode: number;
  constructor(message: string, opts: { suggestion?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message);
    this.name = new.target.name;
    this.suggestion = opts.suggestion;
    this.exitCode = opts.exitCode ?? 1;
    if (opts.cause !== undefined) (this as { cause?: unknown }).cause = opts.cause;
  }
}

/** Bad command line: unknown verb, bad flag value. Exit 2 like most CLIs. */
export class UsageError extends TisealError {
  constructor(message: string, suggestion?: string) {
    super(message, { suggestion, exitCode: 2 });
  }
}

export interface SourcePosition {
  file: string;
  line: number; // 1-based
  column: number; // 1-based
}

export interface TopologyProblem extends SourcePosition {
  severity: 'error' | 'warning';
  message: string;
  suggestion?: string;
}

export function formatProblem(p: TopologyProblem): string {
  const tail = p.suggestion ? ` (${p.suggestion})` : '';
  return `${p.file}:${p.line}:${p.column}: ${p.severity}: ${p.message}${tail}`;
}

export class TopologyError extends TisealError {
  readonly problems: TopologyProblem[];
  constructor(problems: TopologyProblem[], suggestion = 'fix the topology file and run `tiseal topology check <file>` again') {
    const errors = problems.filter((p) => p.severity === 'error');
    const first = errors[0] ?? problems[0];
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : '';
    super(first ? `${formatProblem(first)}${more}` : 'invalid topology', { suggestion });
    this.problems = problems;
  }
}

export class RemoteCommandError extends TisealError {
  readonly host: string;
  readonly command: string;
  readonly code: number | null;
  readonly stderr: string;
  constructor(host: string, command: string, code: number | null, stderr: string, suggestion?: string) {
    const tail = stderrTail(stderr);
    super(`${host}: \`${command}\` exited ${code === null ? '(killed)' : code}${tail ? `: ${tail}` : ''}`, { suggestion });
    this.host = host;
    this.command = command;
    this.code = code;
    this.stderr = stderr;
  }
}

export function stderrTail(stderr: string, lines = 3): string {
  return terminalSafe(stderr.trim().split('\n').slice(-lines).join(' | ').slice(0, 500), { newlines: false });
}

export class SshError extends TisealError {
  readonly host: string;
  constructor(host: string, message: string, suggestion?: string, cause?: unknown) {
    super(`${host}: ${message}`, { suggestion, cause });
    this.host = host;
  }
}

export class HostKeyError extends SshError {
  readonly fingerprint: string;
  constructor(host: string, message: string, fingerprint: string, suggestion: string) {
    super(host, message, suggestion);
    this.fingerprint = fingerprint;
  }
}

export class CertError extends TisealError {}
export class PreflightError extends TisealError {}
export class LockError extends TisealError {}
export class StepError extends TisealError {}

/** A local file or directory tiseal keeps or reads (state dir, lock, journal, meta, known_hosts, stats). */
export class LocalStateError extends TisealError {}

const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'it does not exist',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a component of the path is not a directory',
  EEXIST: 'something else already exists there',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'the file system is read-only',
  ELOOP: 'it is a symbolic link (not followed)',
  EIO: 'input/output error',
};

/** A Node fs error as a one-line LocalStateError naming the path (TisealErrors pass through). */
export function localIoError(e: unknown, file: string, doing: string, suggestion?: string): TisealError {
  if (e instanceof TisealError) return e;
  const code = (e as NodeJS.ErrnoException)?.code;
  const why = (code && ERRNO_TEXT[code]) ?? (e as Error)?.message ?? String(e);
  const hint =
    suggestion ??
    (code === 'ENOSPC' || code === 'EDQUOT'
      ? `free some space on the file system of ${file} and re-run`
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? `run as the user that owns ${file}, or fix its permissions`
        : `check ${file}`);
  return new LocalStateError(`cannot ${doing} ${file}: ${why}`, { suggestion: hint, cause: e });
}
