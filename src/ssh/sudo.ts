/** Non-interactive sudo: wrapping, recognising "needs a password", and a preflight check. */
import { RemoteCommandError } from '../errors';
import { shq } from '../util/shell';
import type { Executor } from './executor';

/** `sudo -n -- sh -c '<command>'`: the whole command line (pipes, redirections) runs as root. */
export function wrapSudo(command: string): string {
  return `sudo -n -- sh -c ${shq(command)}`;
}

/** sudo's own refusals when it would have to prompt (the command itself never ran). */
export function isSudoPasswordError(code: number | null, stderr: string): boolean {
  if (code !== 1) return false;
  return /^sudo: (a password is required|a terminal is required|.*is not in the sudoers file|.*may not run sudo)/m.test(stderr);
}

export function sudoSuggestion(user?: string): string {
  const who = user ?? '<user>';
  return (
    `tiseal runs root commands with \`sudo -n\` and never prompts: grant ${who} passwordless sudo on this host ` +
    `(like TiUP requires), e.g. \`echo '${who} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/${who}\`, or connect as root`
  );
}

export function sudoError(host: string, command: string, code: number | null, stderr: string, user?: string): RemoteCommandError {
  return new RemoteCommandError(host, `sudo ${command}`, code, stderr, sudoSuggestion(user));
}

/** Fails with the clear sudo error when the login user cannot `sudo -n` (or sudo is missing). */
export async function checkSudo(executor: Executor): Promise<void> {
  try {
    await executor.exec('true', { sudo: true });
  } catch (err) {
    if (err instanceof RemoteCommandError && !err.suggestion) {
      throw new RemoteCommandError(executor.host, 'sudo -n true', err.code, err.stderr, sudoSuggestion(executor.user));
    }
    throw err;
  }
}
