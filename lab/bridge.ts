/** The lab bridge in the machine's network namespace; each container gets a veth (`host0`) on it. */
import * as fs from 'fs';
import { run } from './sys';

export function bridgeExists(name: string): boolean {
  return fs.existsSync(`/sys/class/net/${name}`);
}

export function validBridgeName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,15}$/.test(name);
}

async function bridgeAddresses(name: string): Promise<string[]> {
  const r = await run('ip', ['-o', '-4', 'addr', 'show', 'dev', name], { allowFailure: true });
  return [...r.stdout.matchAll(/inet (\S+)/g)].map((m) => m[1]);
}

/**
 * Make sure `name` exists, carries `address` (e.g. 10.77.0.1/24) and is up.
 * Returns whether this call created it (only then does `down` delete it).
 */
export async function ensureBridge(name: string, address: string): Promise<{ created: boolean }> {
  let created = false;
  if (!bridgeExists(name)) {
    await run('ip', ['link', 'add', name, 'type', 'bridge']);
    created = true;
  }
  if (!(await bridgeAddresses(name)).includes(address)) {
    await run('ip', ['addr', 'add', address, 'dev', name]);
  }
  await run('ip', ['link', 'set', name, 'up']);
  return { created };
}

export async function deleteBridge(name: string): Promise<void> {
  if (bridgeExists(name)) await run('ip', ['link', 'del', name]);
}

/** Interfaces still enslaved to the bridge (veths of running containers). */
export function bridgePorts(name: string): string[] {
  try {
    return fs.readdirSync(`/sys/class/net/${name}/brif`);
  } catch {
    return [];
  }
}
