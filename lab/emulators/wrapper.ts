/**
 * The shell wrapper the lab installs at the path TiUP uses for each binary (see the lab contract):
 * it runs the compiled emulator with the host's node. `TISEAL_EMULATOR_SELF` tells the emulator
 * where it was installed (PD/TiKV report deploy_path = the directory of the binary, as the real
 * ones report the directory of their executable).
 */
export type EmulatedBinary = 'pd-server' | 'tikv-server' | 'tidb-server' | 'tiflash' | 'cdc' | 'pump' | 'drainer' | 'ng-monitoring-server';

/** binary → path relative to the instance's deploy_dir (TiUP layout). */
export const EMULATOR_BINARIES: Readonly<Record<EmulatedBinary, string>> = {
  'pd-server': 'bin/pd-server',
  'tikv-server': 'bin/tikv-server',
  'tidb-server': 'bin/tidb-server',
  tiflash: 'bin/tiflash/tiflash',
  cdc: 'bin/cdc',
  pump: 'bin/pump',
  drainer: 'bin/drainer',
  // TiUP ships it in the prometheus package: <prometheus deploy_dir>/bin/ng-monitoring-server
  'ng-monitoring-server': 'bin/ng-monitoring-server',
};

/** Compiled entry file under dist/lab/emulators for each binary. */
export const EMULATOR_ENTRIES: Readonly<Record<EmulatedBinary, string>> = {
  'pd-server': 'pd-server.js',
  'tikv-server': 'tikv-server.js',
  'tidb-server': 'tidb-server.js',
  tiflash: 'tiflash.js',
  cdc: 'cdc.js',
  pump: 'pump.js',
  drainer: 'drainer.js',
  'ng-monitoring-server': 'ngmonitoring.js',
};

export interface WrapperOptions {
  /** Emulated component version, e.g. "v8.5.1". */
  version: string;
  /** node inside the host (default /usr/local/bin/node, bind-mounted by the lab). */
  nodePath?: string;
  /** Directory holding the compiled emulators (default /opt/tiseal/dist/lab/emulators). */
  emulatorDir?: string;
}

function shq(s: string): string {
  return /^[A-Za-z0-9_./:=+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

export function emulatorWrapper(binary: EmulatedBinary, opts: WrapperOptions): string {
  if (!(binary in EMULATOR_BINARIES)) throw new Error(`unknown emulated binary: ${binary}`);
  if (!/^v?\d+\.\d+\.\d+/.test(opts.version)) throw new Error(`invalid emulated version: ${opts.version}`);
  const node = opts.nodePath ?? '/usr/local/bin/node';
  const dir = (opts.emulatorDir ?? '/opt/tiseal/dist/lab/emulators').replace(/\/+$/, '');
  const version = opts.version.startsWith('v') ? opts.version : `v${opts.version}`;
  return [
    '#!/bin/sh',
    `# tiseal lab EMULATOR of ${binary} (test equipment, not the real component)`,
    `export TISEAL_EMULATED_VERSION=${shq(version)}`,
    'TISEAL_EMULATOR_SELF="$(readlink -f "$0")"',
    'export TISEAL_EMULATOR_SELF',
    `exec ${shq(node)} ${shq(`${dir}/${EMULATOR_ENTRIES[binary]}`)} "$@"`,
    '',
  ].join('\n');
}
