import * as net from 'net';

/**
 * A loopback address of this test's own, 127.200-254.x.y (the emulator tests' nets are
 * 127.100-199.x.y): a port picked free on it stays free until the test binds it, whatever
 * parallel test files do meanwhile on 127.0.0.1.
 */
export function privateLoopback(): string {
  const r = (n: number) => Math.floor(Math.random() * n);
  return `127.${200 + r(55)}.${r(256)}.${1 + r(254)}`;
}

/** A port nobody listens on at `host` right now (the kernel's pick for port 0). */
export async function freePort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r, j) => s.once('error', j).listen(0, host, () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
