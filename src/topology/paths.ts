/** Path rules TiUP applies to deploy/data/log dirs (pkg/cluster/spec: Abs, BaseInstance.DataDir/LogDir). */
import * as posix from 'path/posix';

/** Go's filepath.Clean for POSIX paths: normalise, no trailing slash (except "/"). */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const n = posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** Go's filepath.Join: skips empty elements, then cleans. */
export function joinPath(...parts: string[]): string {
  const kept = parts.filter((x) => x !== '');
  return kept.length === 0 ? '' : cleanPath(kept.join('/'));
}

export function isAbsolute(p: string): boolean {
  return p.startsWith('/');
}

/** TiUP spec.Abs: a relative path lives under /home/<user>/ (even for root, as TiUP does). */
export function absUnderHome(user: string, p: string): string {
  const u = user.trim();
  const path = p.trim();
  return cleanPath(isAbsolute(path) ? path : joinPath('/home', u, path));
}

/** host:port, with IPv6 literals bracketed (Go's net.JoinHostPort). */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
