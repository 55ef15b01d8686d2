/**
 * Open one authenticated ssh2 connection: TCP with no-delay (or a forwarded channel when
 * jumping), host key verified against known_hosts, connection failures turned into SshError.
 */
import * as net from 'net';
import type { Duplex } from 'stream';
import { Client, type ConnectConfig } from 'ssh2';
import { HostKeyError, SshError } from '../errors';
import type { AuthPlan } from './auth';
import { agentSuggestion } from './auth';
import {
  appendKnownHost,
  checkHostKey,
  fingerprintSha256,
  keyBlobType,
  knownHostsName,
  knownKeyTypes,
  readKnownHosts,
} from './knownHosts';

export interface ConnectTarget {
  /** Name used in messages, e.g. `10.0.1.5:22` or `db1 (10.0.1.5:22)`. */
  label: string;
  /** Address connected to and looked up in known_hosts. */
  hostName: string;
  port: number;
  user: string;
  /** Where `user` came from (`--ssh-user`, ssh config User, topology global.user), for the auth hint. */
  userSource?: string;
}

export interface ConnectParams {
  auth: AuthPlan;
  knownHostsFile: string;
  acceptNewHostKeys: boolean;
  readyTimeoutMs: number;
  keepaliveIntervalMs: number;
  /** A stream already connected to the target (a jump host's forwardOut channel). */
  sock?: Duplex;
  /** Label of the jump host, for messages. */
  via?: string;
}

/** Wire bytes in each direction, counted on the socket ssh2 writes to and reads from. */
export interface ByteCounters {
  bytesUp: number;
  bytesDown: number;
}

export interface OpenConnection {
  client: Client;
  counters: ByteCounters;
  /** The known_hosts line appended when the key was accepted on first use. */
  acceptedKnownHostsLine?: string;
}

const HOST_KEY_ALGOS: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};
const DEFAULT_HOST_KEY_ORDER = Object.values(HOST_KEY_ALGOS).flat();

/** Prefer the key types known_hosts already holds for this host, like OpenSSH does. */
export function hostKeyAlgorithms(knownTypes: string[]): string[] {
  const first = knownTypes.flatMap((t) => HOST_KEY_ALGOS[t] ?? []);
  return [...first, ...DEFAULT_HOST_KEY_ORDER.filter((a) => !first.includes(a))];
}

export function keyTypeLabel(type: string): string {
  if (type === 'ssh-ed25519') return 'ED25519';
  if (type.startsWith('ecdsa-')) return 'ECDSA';
  if (type === 'ssh-rsa') return 'RSA';
  return type;
}

function countBytes(sock: Duplex, counters: ByteCounters): void {
  sock.on('data', (d: Buffer) => {
    counters.bytesDown += d.length;
  });
  const write = sock.write.bind(sock) as (...args: unknown[]) => boolean;
  (sock as { write: (...args: unknown[]) => boolean }).write = (chunk: unknown, ...rest: unknown[]) => {
    if (chunk && typeof (chunk as { length?: number }).length === 'number') counters.bytesUp += (chunk as Buffer).length;
    return write(chunk, ...rest);
  };
}

function connectionSuggestion(t: ConnectTarget): string {
  return `check the address ${t.hostName} and the port (--ssh-port, or ssh_port in the topology), that sshd runs there, and that it is reachable from this machine`;
}

function authSuggestion(t: ConnectTarget, auth: AuthPlan): string {
  const from = t.userSource ? `, from ${t.userSource}` : '';
  const parts = [`check the login user (now "${t.user}"${from}; set it with --ssh-user, or User in ~/.ssh/config) and the key (-i/--identity-file)`, `its public key must be in ~${t.user}/.ssh/authorized_keys on ${t.hostName}`];
  if (auth.skippedEncrypted.length > 0) parts.push(agentSuggestion(auth.skippedEncrypted[0]));
  return parts.join('; ');
}

/** Translate an ssh2/socket failure during connect into a user-facing SshError. */
export function connectError(t: ConnectTarget, err: Error & { code?: string; level?: string }, p: ConnectParams): SshError {
  const via = p.via ? ` (via ${p.via})` : '';
  if (err.level === 'client-authentication') {
    const tried = p.auth.described.length ? p.auth.described.join(', ') : 'nothing (no key, no agent)';
    return new SshError(t.label, `authentication failed for user "${t.user}"${via}; tried ${tried}`, authSuggestion(t, p.auth), err);
  }
  if (err.level === 'client-timeout') {
    return new SshError(t.label, `timed out after ${p.readyTimeoutMs} ms connecting${via} (TCP connect, SSH handshake and login)`, connectionSuggestion(t), err);
  }
  switch (err.code) {
    case 'ECONNREFUSED':
      return new SshError(t.label, `connection refused${via}`, connectionSuggestion(t), err);
    case 'ETIMEDOUT':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EHOSTDOWN':
      return new SshError(t.label, `host unreachable (${err.code})${via}`, connectionSuggestion(t), err);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new SshError(t.label, `cannot resolve host name ${t.hostName}`, 'check the host name in the topology (or HostName in ~/.ssh/config)', err);
    default:
  }
  if (p.via && /channel open fail|administratively prohibited|open failed/i.test(err.message)) {
    const why = err.message.replace(/^\(SSH\) Channel open failure: /, '');
    return new SshError(t.label, `${p.via} could not open a connection to ${t.hostName}:${t.port}: ${why}`, `check that ${t.hostName}:${t.port} runs sshd and is reachable from the jump host, and that the jump host allows TCP forwarding (AllowTcpForwarding)`, err);
  }
  return new SshError(t.label, `SSH connection failed${via}: ${err.message}`, connectionSuggestion(t), err);
}

export function openConnection(t: ConnectTarget, p: ConnectParams): Promise<OpenConnection> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    const counters: ByteCounters = { bytesUp: 0, bytesDown: 0 };
    let hostKeyError: HostKeyError | undefined;
    let accepted: string | undefined;
    let settled = false;

    let entries = readKnownHosts(p.knownHostsFile);
    const hostVerifier = (key: Buffer): boolean => {
      entries = readKnownHosts(p.knownHostsFile); // re-read: a parallel connect may have just recorded it
      const fp = fingerprintSha256(key);
      const type = keyBlobType(key);
      const shown = `${keyTypeLabel(type)} key ${fp}`;
      const name = knownHostsName(t.hostName, t.port);
      const check = checkHostKey(entries, t.hostName, t.port, key);
      if (check.status === 'ok') return true;
      if (check.status === 'revoked') {
        hostKeyError = new HostKeyError(t.label, `host key ${shown} is marked @revoked in ${check.entry.file}:${check.entry.line}; refusing to connect`, fp, `the host must get a new host key; then record it (ssh-keyscan -p ${t.port} ${t.hostName} >> ${p.knownHostsFile})`);
        return false;
      }
      if (check.status === 'changed') {
        const where = check.entries.map((e) => `${e.file}:${e.line}`).join(', ');
        hostKeyError = new HostKeyError(
          t.label,
          `WARNING: HOST KEY CHANGED for ${name}! It now presents ${shown}, but ${where} records ${check.entries.map((e) => fingerprintSha256(e.key)).join(', ')}. Someone may be intercepting the connection (man-in-the-middle); refusing to connect`,
          fp,
          `if the host was legitimately reinstalled, verify ${fp} out of band, remove the old entry (ssh-keygen -R '${name}' -f ${p.knownHostsFile}) and connect again; --accept-new-host-keys never overrides a changed key`,
        );
        return false;
      }
      if (check.others.length > 0) {
        // Known under another key type: a server that offers only a new type is what an impostor
        // without the recorded key would do. Like a changed key, never trusted on first use.
        const where = check.others.map((e) => `${e.file}:${e.line}`).join(', ');
        const types = check.otherTypes.map(keyTypeLabel).join(', ');
        hostKeyError = new HostKeyError(
          t.label,
          `WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED for ${name}! It presents only ${shown}, but ${where} records its ${types} key; someone may be intercepting the connection (man-in-the-middle); refusing to connect`,
          fp,
          `if the host's keys were legitimately replaced, verify ${fp} out of band, then remove the old entry (ssh-keygen -R '${name}' -f ${p.knownHostsFile}) or add the new key yourself (ssh-keyscan -t ${type} -p ${t.port} ${t.hostName} >> ${p.knownHostsFile}); --accept-new-host-keys never records a second key type for a known host`,
        );
        return false;
      }
      if (p.acceptNewHostKeys) {
        try {
          accepted = appendKnownHost(p.knownHostsFile, t.hostName, t.port, key);
        } catch (err) {
          hostKeyError = new HostKeyError(t.label, `cannot record host key ${shown} in ${p.knownHostsFile}: ${(err as Error).message}`, fp, 'make the known_hosts file writable or pass --known-hosts');
          return false;
        }
        return true;
      }
      hostKeyError = new HostKeyError(
        t.label,
        `unknown host key: ${name} presents ${shown}, which is not in ${p.knownHostsFile}; refusing to connect`,
        fp,
        `verify the fingerprint ${fp} out of band, then run again with --accept-new-host-keys, or record it yourself: ssh-keyscan -p ${t.port} ${t.hostName} >> ${p.knownHostsFile}`,
      );
      return false;
    };

    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      client.end();
      reject(hostKeyError ?? (err instanceof SshError ? err : connectError(t, err as Error & { code?: string; level?: string }, p)));
    };

    if (p.auth.methods.length === 0) {
      fail(new SshError(t.label, `no credentials to log in as "${t.user}": no usable key and no ssh-agent`, authSuggestion(t, p.auth)));
      return;
    }

    let sock: Duplex;
    if (p.sock) {
      sock = p.sock;
    } else {
      const s = net.connect({ host: t.hostName, port: t.port });
      s.setNoDelay(true); // 44 ms -> 2.3 ms per exec round trip (Nagle vs delayed ACK)
      sock = s;
    }
    countBytes(sock, counters);

    client.on('ready', () => {
      if (settled) return;
      settled = true;
      resolve({ client, counters, acceptedKnownHostsLine: accepted });
    });
    client.on('error', (err: Error & { level?: string }) => {
      // ssh2 reports an unusable agent or a failed signature, then tries the next method itself.
      if (err.level === 'agent' || (err.level === 'client-authentication' && !/All configured authentication methods failed/.test(err.message))) {
        p.auth.described.push(`(${err.message})`);
        return;
      }
      if (!settled) fail(err);
    });
    client.on('close', () => {
      if (!settled) fail(hostKeyError ?? Object.assign(new Error('connection closed during the handshake'), { level: 'protocol' }));
    });

    const config: ConnectConfig = {
      sock: sock as ConnectConfig['sock'],
      username: t.user,
      readyTimeout: p.readyTimeoutMs,
      keepaliveInterval: p.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      hostVerifier,
      authHandler: p.auth.methods.map((m) => ({ ...m })) as unknown as ConnectConfig['authHandler'],
      algorithms: { serverHostKey: hostKeyAlgorithms(knownKeyTypes(entries, t.hostName, t.port)) as never },
    };
    try {
      client.connect(config);
    } catch (err) {
      fail(err as Error);
    }
  });
}
