/**
 * Which credentials to offer, in order: keys given with `-i`, then the ssh-agent, then keys from
 * ~/.ssh/config (or the default ~/.ssh/id_* files when none is configured anywhere).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { utils } from 'ssh2';
import { SshError } from '../errors';

export type AuthMethod =
  | { type: 'publickey'; username: string; key: Buffer }
  | { type: 'agent'; username: string; agent: string };

export interface AuthPlan {
  methods: AuthMethod[];
  /** Human-readable list of what will be tried, for the auth-failure message. */
  described: string[];
  /** Keys skipped because they need a passphrase (only possible when an agent is available). */
  skippedEncrypted: string[];
}

export const DEFAULT_IDENTITY_NAMES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export function isEncryptedKeyError(err: Error): boolean {
  return /encrypted|passphrase/i.test(err.message);
}

export function agentSuggestion(file: string): string {
  return `tiseal does not prompt for passphrases: load the key into ssh-agent (\`eval $(ssh-agent); ssh-add ${file}\`) and keep SSH_AUTH_SOCK set, or use a key without a passphrase`;
}

/**
 * Read and check one private key. Explicit keys (from `-i` or ssh config) that are missing,
 * unreadable or passphrase-protected are errors; discovered default keys are skipped quietly.
 */
export function loadPrivateKey(
  file: string,
  label: string,
  opts: { explicit: boolean; agentAvailable: boolean },
): { key?: Buffer; encrypted?: boolean } {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    if (!opts.explicit) return {};
    throw new SshError(label, `cannot read identity file ${file}: ${(err as Error).message}`, 'check the path given with -i/--identity-file (or IdentityFile in ~/.ssh/config)', err);
  }
  const parsed = utils.parseKey(data);
  if (parsed instanceof Error) {
    if (isEncryptedKeyError(parsed)) {
      if (opts.agentAvailable || !opts.explicit) return { encrypted: true };
      throw new SshError(label, `identity file ${file} is protected by a passphrase`, agentSuggestion(file));
    }
    if (!opts.explicit) return {};
    throw new SshError(label, `identity file ${file} is not a usable private key: ${parsed.message}`, 'pass an OpenSSH or PEM private key (ed25519, ecdsa or rsa) with -i');
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key.isPrivateKey()) {
    if (!opts.explicit) return {};
    throw new SshError(label, `identity file ${file} holds a public key, not a private key`, `pass the private key (e.g. ${file.replace(/\.pub$/, '')}) with -i`);
  }
  return { key: data };
}

export function planAuth(opts: {
  label: string;
  username: string;
  explicitFiles: string[];
  configFiles: string[];
  agent?: string;
  homeDir?: string;
}): AuthPlan {
  const methods: AuthMethod[] = [];
  const described: string[] = [];
  const skippedEncrypted: string[] = [];
  const agentAvailable = !!opts.agent;
  const seen = new Set<string>();
  const addFile = (file: string, explicit: boolean) => {
    const abs = path.resolve(file);
    if (seen.has(abs)) return;
    seen.add(abs);
    const r = loadPrivateKey(abs, opts.label, { explicit, agentAvailable });
    if (r.key) {
      methods.push({ type: 'publickey', username: opts.username, key: r.key });
      described.push(`key ${abs}`);
    } else if (r.encrypted) {
      skippedEncrypted.push(abs);
    }
  };
  for (const f of opts.explicitFiles) addFile(f, true);
  if (opts.agent) {
    methods.push({ type: 'agent', username: opts.username, agent: opts.agent });
    described.push(`ssh-agent (${opts.agent})`);
  }
  for (const f of opts.configFiles) addFile(f, false);
  if (opts.explicitFiles.length === 0 && opts.configFiles.length === 0) {
    const dir = path.join(opts.homeDir ?? os.homedir(), '.ssh');
    for (const name of DEFAULT_IDENTITY_NAMES) addFile(path.join(dir, name), false);
  }
  return { methods, described, skippedEncrypted };
}
