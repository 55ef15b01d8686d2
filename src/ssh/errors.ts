/** Errors specific to the executor layer (the shared ones live in src/errors.ts). */
import { RemoteCommandError, TisealError } from '../errors';

/** A remote command outlived `timeoutMs`; it was killed on the host and its channel closed. */
export class CommandTimeoutError extends RemoteCommandError {
  readonly timeoutMs: number;
  constructor(host: string, command: string, timeoutMs: number, stderr: string) {
    super(host, command, null, stderr, 'the command hung or the host is overloaded: check the host, or raise the timeout');
    this.timeoutMs = timeoutMs;
    this.message = `${host}: \`${command}\` timed out after ${formatMs(timeoutMs)} and was killed`;
  }
}

/** A file operation (SFTP or its sudo equivalent) failed; `code` is errno-like (`ENOENT`, `EACCES`, …). */
export class RemoteFileError extends TisealError {
  readonly host: string;
  readonly path: string;
  readonly code: string;
  constructor(host: string, op: string, remotePath: string, code: string, detail: string, suggestion?: string) {
    super(`${host}: cannot ${op} ${remotePath}: ${detail}`, { suggestion });
    this.host = host;
    this.path = remotePath;
    this.code = code;
  }
}

/**
 * Root was about to follow a symlink (or a path component swapped mid-walk) under a directory
 * a non-root user controls; nothing was changed through it.
 */
export class UnsafeRemotePathError extends RemoteFileError {
  constructor(host: string, remotePath: string, why: string) {
    super(host, 'use', remotePath, 'ELOOP', `${why}: tiseal runs as root there and never follows a path another user controls`, `replace ${remotePath} with a real file or directory (and find out who made it), then run again`);
    this.message = `${host}: refusing ${remotePath}: ${why} (tiseal runs as root and never follows a path another user controls)`;
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
