/** Lab options, their defaults (flags > environment > defaults) and derived paths. */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_CACHE_DIR } from './rootfs';

export interface LabOptions {
  /** Lab directory (key, known_hosts, tiseal.env, state). Default `<repo>/.lab/default` or $TISEAL_LAB_DIR. */
  dir?: string;
  /** Topology to deploy. Default: the lab dir's topology.yaml when the lab is up, else lab/topologies/default.yaml. */
  topology?: string;
  /** Lab subnet (default 10.77.0.0/24 or $TISEAL_LAB_SUBNET). */
  subnet?: string;
  /** Bridge name (default tiseal0 or $TISEAL_LAB_BRIDGE). */
  bridge?: string;
  /** Rootfs cache (default /var/cache/tiseal-lab or $TISEAL_LAB_CACHE). */
  cacheDir?: string;
  /** Version the emulators report (default v8.5.1 or $TISEAL_LAB_VERSION). */
  version?: string;
  /** Progress lines (default: none). */
  log?: (msg: string) => void;
}

export interface ResolvedOptions {
  dir: string;
  repoDir: string;
  subnet: string;
  bridge: string;
  cacheDir: string;
  version: string;
  /** Overlays live outside the repo (jest and editors must never crawl a mounted rootfs). */
  overlayBase: string;
  /** Short id of the lab dir, used in cgroup names so two lab dirs never collide. */
  key: string;
  log: (msg: string) => void;
}

export const DEFAULT_SUBNET = '10.77.0.0/24';
export const DEFAULT_BRIDGE = 'tiseal0';
export const DEFAULT_VERSION = 'v8.5.1';
export const OVERLAY_BASE = '/var/lib/tiseal-lab';

/** The tiseal repo root (works from lab/*.ts under ts-jest and from dist/lab/*.js). */
export function repoRoot(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tiseal') return dir;
      } catch {
        /* keep looking */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the tiseal repository above ${__dirname}`);
    dir = up;
  }
}

export function defaultLabDir(): string {
  return process.env.TISEAL_LAB_DIR ? path.resolve(process.env.TISEAL_LAB_DIR) : path.join(repoRoot(), '.lab', 'default');
}

export function defaultTopologyFile(): string {
  return path.join(repoRoot(), 'lab', 'topologies', 'default.yaml');
}

export function resolveOptions(opts: LabOptions = {}): ResolvedOptions {
  const dir = path.resolve(opts.dir ?? defaultLabDir());
  const key = createHash('sha256').update(dir).digest('hex').slice(0, 8);
  return {
    dir,
    repoDir: repoRoot(),
    subnet: opts.subnet ?? process.env.TISEAL_LAB_SUBNET ?? DEFAULT_SUBNET,
    bridge: opts.bridge ?? process.env.TISEAL_LAB_BRIDGE ?? DEFAULT_BRIDGE,
    cacheDir: opts.cacheDir ?? process.env.TISEAL_LAB_CACHE ?? DEFAULT_CACHE_DIR,
    version: opts.version ?? process.env.TISEAL_LAB_VERSION ?? DEFAULT_VERSION,
    overlayBase: path.join(OVERLAY_BASE, key),
    key,
    log: opts.log ?? (() => undefined),
  };
}
