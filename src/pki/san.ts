/**
 * Subject Alternative Names: hosts from the topology become IP SANs (v4 or v6) or DNS SANs,
 * normalised so that duplicates collapse (`::1` and `0:0::1` are one SAN, `PD1.local` and `pd1.local` too).
 */
import net from 'net';
import { CertError } from '../errors';

export interface SanSet {
  dns: string[];
  ip: string[];
}

export function ipToBytes(ip: string): Buffer {
  const v = net.isIP(ip);
  if (v === 4) return Buffer.from(ip.split('.').map((p) => Number(p)));
  if (v !== 6) throw new CertError(`'${ip}' is not an IP address`);
  let head = ip;
  let v4tail: number[] = [];
  const lastColon = ip.lastIndexOf(':');
  if (ip.slice(lastColon + 1).includes('.')) {
    v4tail = ip.slice(lastColon + 1).split('.').map(Number);
    head = ip.slice(0, lastColon + 1) + '0:0'; // stand-in groups, overwritten below
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const groups = (s: string | undefined) => (s ? s.split(':').filter((g) => g !== '') : []);
  const l = groups(left);
  const r = groups(right);
  const full = right === undefined ? l : [...l, ...Array(8 - l.length - r.length).fill('0'), ...r];
  const out = Buffer.alloc(16);
  full.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  if (v4tail.length === 4) Buffer.from(v4tail).copy(out, 12);
  return out;
}

/** Dotted quad for 4 bytes; RFC 5952 text (lowercase, longest zero run as `::`) for 16. */
export function bytesToIp(b: Buffer): string {
  if (b.length === 4) return Array.from(b).join('.');
  if (b.length !== 16) throw new CertError(`IP SAN of ${b.length} bytes is neither IPv4 nor IPv6`);
  const g = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export const normalizeIp = (ip: string): string => bytesToIp(ipToBytes(ip));

const DNS_LABEL = /^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$/;

export function normalizeDns(name: string): string {
  const n = name.trim().toLowerCase().replace(/\.$/, '');
  const labels = n.split('.');
  const ok = n.length > 0 && n.length <= 253 && labels.every((l, i) => DNS_LABEL.test(l) && (l !== '*' || i === 0));
  if (!ok) {
    throw new CertError(`'${name}' is neither an IP address nor a valid DNS name`, {
      suggestion: 'hosts must be IPv4/IPv6 addresses or ASCII host names (use punycode for internationalised names)',
    });
  }
  return n;
}

/** `[::1]` → `::1`; zone ids cannot be certified. */
function stripHost(h: string): string {
  let s = h.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.includes('%')) throw new CertError(`'${h}' has an IPv6 zone id, which cannot go into a certificate`, { suggestion: 'use the address without %zone' });
  return s;
}

export class SanBuilder {
  private readonly dnsSet = new Set<string>();
  private readonly ipSet = new Set<string>();
  readonly dns: string[] = [];
  readonly ip: string[] = [];

  /** A bare host: an IP goes to the IP SANs, anything else must be a DNS name. */
  addHost(host: string): this {
    const h = stripHost(host);
    return net.isIP(h) ? this.addIp(h) : this.addDns(h);
  }

  /** Also accepts `DNS:name` / `IP:addr` as openssl writes them. */
  addSpec(spec: string): this {
    const m = /^(DNS|IP|IP Address):(.*)$/i.exec(spec.trim());
    if (!m) return this.addHost(spec);
    return m[1]!.toUpperCase() === 'DNS' ? this.addDns(m[2]!) : this.addIp(stripHost(m[2]!));
  }

  addDns(name: string): this {
    const n = normalizeDns(name);
    if (!this.dnsSet.has(n)) { this.dnsSet.add(n); this.dns.push(n); }
    return this;
  }

  addIp(ip: string): this {
    if (!net.isIP(ip)) throw new CertError(`'${ip}' is not an IP address`);
    const n = normalizeIp(ip);
    if (!this.ipSet.has(n)) { this.ipSet.add(n); this.ip.push(n); }
    return this;
  }

  get size(): number {
    return this.dns.length + this.ip.length;
  }

  toSet(): SanSet {
    return { dns: [...this.dns], ip: [...this.ip] };
  }
}
