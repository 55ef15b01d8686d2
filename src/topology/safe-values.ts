/**
 * Formats of the topology values that reach a root shell, a run script, a unit file, a TOML or a
 * certificate. Each check returns why a value is refused (undefined when it is fine), so the
 * parser can report it at the value's file:line:column before anything runs on a host.
 */
import { isIP } from 'net';

/** RFC 1123 host name labels; "_" is let through as Go's crypto/x509 does (still shell-inert). */
const DNS_NAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;

/** An IP address or a DNS name: what TiUP dials, SSH connects to and a certificate SAN can hold. */
export function hostProblem(v: string): string | undefined {
  if (isIP(v) !== 0) return undefined;
  // An IPv6 link-local address with a zone ("fe80::1%eth0").
  const zone = /^([0-9A-Fa-f:.]+)%([A-Za-z0-9_.-]+)$/.exec(v);
  if (zone && isIP(zone[1]) === 6) return undefined;
  if (/^[\d.]+$/.test(v)) return 'is not a valid IPv4 address';
  if (!DNS_NAME.test(v)) return 'is neither an IP address nor a DNS name';
  return undefined;
}

// Characters a directory may hold: every one is inert in a shell word, TOML and a unit file
// ("%" is not: systemd expands %h, %u... in ExecStart).
const PATH_CHARS = /^[A-Za-z0-9._/+@:=-]+$/;

/**
 * One deploy/data/log directory as written (relative or absolute; TiUP makes relative ones
 * absolute). tiseal runs as root with these paths, so they are held to a plain character set.
 */
export function pathProblem(v: string): string | undefined {
  if (/\s/.test(v)) return 'contains white space';
  if (!PATH_CHARS.test(v)) {
    const bad = [...v].find((c) => !PATH_CHARS.test(c))!;
    return `contains ${JSON.stringify(bad)}, a character a shell, unit file or TOML would interpret`;
  }
  if (v.split('/').includes('..')) return 'contains a ".." component';
  if (v.startsWith('-')) return 'starts with "-" (it would be read as an option)';
  return undefined;
}

/**
 * numactl node and CPU lists (`--cpunodebind`, `--membind`, `-C`): TiUP passes numa_node and
 * numa_cores to numactl as written (embed/templates/scripts/run_*.sh.tpl), so they must be what
 * numactl(8) accepts: "all", or N / N-N items joined by ",", optionally after "+" or "!".
 */
const NUMA_LIST = /^(?:all|[+!]?\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*)$/;

export function numaProblem(v: string): string | undefined {
  return NUMA_LIST.test(v) ? undefined : 'is not a numactl list such as "0", "0,1" or "0-3"';
}

/**
 * TiCDC's own rule for --cluster-id (pingcap/tiflow pkg/config/server_config.go
 * isValidClusterID): ^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$, at most 128 characters, not a reserved word.
 */
const CDC_CLUSTER_ID = /^[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*$/;
const CDC_RESERVED = ['owner', 'capture', 'task', 'changefeed', 'job', 'meta'];

export function cdcClusterIdProblem(v: string): string | undefined {
  if (v.length > 128) return 'is longer than 128 characters';
  if (!CDC_CLUSTER_ID.test(v)) return 'must match ^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$ (TiCDC refuses anything else)';
  if (CDC_RESERVED.includes(v)) return `is reserved by TiCDC (${CDC_RESERVED.join(', ')})`;
  return undefined;
}

/** A time zone name for TiCDC --tz: "System", "UTC", "Asia/Shanghai", "Etc/GMT+8". */
export function timeZoneProblem(v: string): string | undefined {
  return /^[A-Za-z0-9_+/.:-]+$/.test(v) && !v.split('/').includes('..') ? undefined : 'is not a time zone name such as "UTC" or "Asia/Shanghai"';
}

// Shell, list and key=value separators: a PD name goes into --initial-cluster=name=url,...
const UNSAFE_WORD = /[\s"'`$\\;|&<>(){}*?!#~,=]/;

/** PD (and TSO/scheduling) member names. */
export function memberNameProblem(v: string): string | undefined {
  const bad = UNSAFE_WORD.exec(v);
  return bad ? `contains ${JSON.stringify(bad[0])}` : undefined;
}

/** advertise_* addresses (host:port or scheme://host:port, several joined by ","). */
export function advertiseProblem(v: string): string | undefined {
  const bad = /[\s"'`$\\;|&<>(){}*?!#~=]/.exec(v);
  return bad ? `contains ${JSON.stringify(bad[0])}` : undefined;
}
