/** IPv4 subnet arithmetic for the lab bridge (pure). */

export interface Subnet {
  cidr: string; // normalised "10.77.0.0/24"
  network: number;
  prefix: number;
}

export function parseIPv4(ip: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip.trim());
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function parseSubnet(cidr: string): Subnet {
  const m = /^([\d.]+)\/(\d{1,2})$/.exec(cidr.trim());
  const ip = m ? parseIPv4(m[1]) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (ip === undefined || !(prefix >= 8 && prefix <= 30)) {
    throw new Error(`invalid lab subnet "${cidr}" (expected an IPv4 CIDR between /8 and /30, e.g. 10.77.0.0/24)`);
  }
  const network = (ip & mask(prefix)) >>> 0;
  return { cidr: `${formatIPv4(network)}/${prefix}`, network, prefix };
}

/** Host address strictly inside the subnet (not the network or broadcast address). */
export function inSubnet(ip: string, subnet: Subnet): boolean {
  const n = parseIPv4(ip);
  if (n === undefined) return false;
  if (((n & mask(subnet.prefix)) >>> 0) !== subnet.network) return false;
  const broadcast = (subnet.network | (~mask(subnet.prefix) >>> 0)) >>> 0;
  return n !== subnet.network && n !== broadcast;
}

/** The bridge's own address: the first host address (10.77.0.1). */
export function gatewayAddress(subnet: Subnet): string {
  return formatIPv4(subnet.network + 1);
}

/** A valid, stable hostname for a lab host: `tilab-10-77-0-11`. */
export function hostnameFor(ip: string): string {
  return `tilab-${ip.replace(/\./g, '-')}`;
}
