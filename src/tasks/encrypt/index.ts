import * as TOML from '@iarna/toml';
import { editTomlText } from '../../components/toml-text';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { applyEncryption, encryptionConfigFile, EncryptionSettings, isMasterKey, keyDir, masterKeyPath, Method, previousKeyPath, readEncryption } from '../../components/encryption';
import { createHash } from 'crypto';
import { StepError } from '../../errors';
import { EVICT_LEADER } from '../../pd/schedulers';
import { restartStoreEvictingLeaders } from '../restart/evict-leaders';
import { shq } from '../../util/shell';
import type { TomlTable } from '../../components';
import type { Action, Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { readMeta, writeMeta } from '../../state/meta';
import { writeFileAtomic } from '../../state/files';
import type { Instance } from '../../topology/types';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { executorFor, TlsContext } from '../context';
import { factKey } from '../facts';
import { waitHealthy } from '../restart/health';
import { newestMtimeUs, readRemoteText, systemctl, unitStates } from '../remote';
import { deployOwner, fileAction } from '../certs/stage';

/** The master keys tiseal keeps for a cluster (0600, under the 0700 state dir). Never only on hosts. */
export interface KeyFiles {
  current: string;
  next: string;
}

export const localKeys = (ctx: Pick<TlsContext, 'cluster'>): KeyFiles => ({
  current: path.join(ctx.cluster.root, 'encryption', 'master.key'),
  next: path.join(ctx.cluster.root, 'encryption', 'master.key.next'),
});

export const newMasterKey = () => randomBytes(32).toString('hex') + '\n';
export const storeInstances = (ctx: TlsContext) => ctx.topology.instances.filter((i) => encryptionConfigFile(i) !== undefined);
const read = (f: string) => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : undefined);

/** Local key material: `which` names the file that must exist after this step (from --master-key-file or new). */
export function localKeyStep(which: 'current' | 'next', given: string | undefined): Step<TlsContext> {
  return {
    id: `key-${which}`,
    title: which === 'current' ? 'Master key (local, 0600)' : 'New master key for the rotation (local, 0600)',
    async decide(ctx) {
      const files = localKeys(ctx);
      const file = files[which];
      if (read(file) !== undefined) return noop(`${file} exists`);
      const key = given ?? newMasterKey();
      if (which === 'next' && key === read(files.current)) throw new Error('the new master key is the current one');
      return { actions: [{ title: `${given ? 'store the given' : 'generate a'} 256-bit master key in ${file}`, run: async () => writeFileAtomic(file, key, 0o600) }] };
    },
  };
}

/** Put key files on every TiKV/TiFlash host (0600, deploy user), only where they differ. */
export function pushKeysStep(id: string, files: (ctx: TlsContext, inst: Instance) => Array<{ path: string; content: string }>): Step<TlsContext> {
  return {
    id,
    title: 'Push master key files to TiKV and TiFlash hosts (0600, deploy user)',
    async decide(ctx) {
      const planned = await mapLimit(storeInstances(ctx), readConcurrency(ctx.opts), async (inst) => {
        const exec = await executorFor(ctx, inst);
        const writes: Action[] = [];
        for (const f of files(ctx, inst)) {
          const have = await readRemoteText(exec, f.path);
          if (have !== f.content) writes.push(fileAction(ctx, inst, f.path, have, f.content, 0o600));
        }
        if (writes.length === 0) return undefined;
        return {
          title: `${inst.id} on ${inst.host}: ${writes.map((w) => w.title.replace(/ of .*$/, '')).join(', ')}`,
          diff: writes.map((w) => w.diff ?? '').join(''),
          run: async () => {
            await exec.ensureDir(keyDir(inst), { owner: deployOwner(ctx), mode: 0o700 });
            for (const w of writes) await w.run();
          },
        } as Action;
      });
      const actions = planned.filter((a): a is Action => a !== undefined);
      return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('every host has its key files');
    },
  };
}

/** Rewrite `[security.encryption]` in tikv.toml / tiflash-learner.toml where it differs. */
export function encryptionConfigStep(id: string, settings: (inst: Instance) => EncryptionSettings): Step<TlsContext> {
  return {
    id,
    title: 'Set [security.encryption] in tikv.toml and tiflash-learner.toml',
    async decide(ctx) {
      const planned = await mapLimit(storeInstances(ctx), readConcurrency(ctx.opts), async (inst) => {
        const file = encryptionConfigFile(inst)!;
        const text = (await readRemoteText(await executorFor(ctx, inst), file)) ?? '';
        const doc = TOML.parse(text) as TomlTable;
        // Only the encryption keys change: every other byte of the operator's config stays (editTomlText).
        return applyEncryption(doc, settings(inst)) ? fileAction(ctx, inst, file, text, editTomlText(text, doc, `${inst.host}:${file}`), 0o644) : undefined;
      });
      const actions = planned.filter((a): a is Action => a !== undefined);
      return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('every config already says so');
    },
  };
}

/** Not a wire change: restart one store at a time, each Up before the next, so data stays available. */
export function rollingStoreRestartStep(id: string): Step<TlsContext> {
  return {
    id,
    title: 'Rolling restart of TiKV and TiFlash, one store at a time: leaders evicted first, each Up before the next',
    async decide(ctx) {
      const stale = await mapLimit(storeInstances(ctx), readConcurrency(ctx.opts), async (inst) => {
        const exec = await executorFor(ctx, inst);
        const unit = (await unitStates(exec, [inst.unit])).get(inst.unit);
        const files = [encryptionConfigFile(inst)!, masterKeyPath(inst), previousKeyPath(inst)];
        const newest = await newestMtimeUs(exec, files);
        return !unit || unit.activeState !== 'active' || unit.activeEnterUs < newest ? inst : undefined;
      });
      const todo = stale.filter((i): i is Instance => i !== undefined);
      if (todo.length === 0) return noop('every store started after its encryption settings changed');
      const tls = ctx.topology.instances.some((i) => ctx.facts?.instances.get(factKey(i))?.config === 'on');
      return {
        concurrency: 1,
        actions: todo.map((inst) => ({
          title: `evict the leaders of ${inst.unit} on ${inst.host}, restart it, wait until its store is Up, remove the ${EVICT_LEADER}`,
          run: () =>
            restartStoreEvictingLeaders(ctx, inst, async () => {
              await systemctl(await executorFor(ctx, inst), 'restart', inst.unit);
              await waitHealthy(ctx, [inst], { tls, timeoutMs: 90_000 });
            }),
        })),
      };
    },
  };
}

/** After a rotation: drop previous-master-key and delete the old key files (read only at start: no restart). */
export function dropPreviousKeyStep(settings: (inst: Instance) => EncryptionSettings): Step<TlsContext> {
  const config = encryptionConfigStep('drop-previous-config', settings);
  return {
    id: 'drop-previous',
    title: 'Forget the old master key: previous-master-key out of the configs, old key files deleted',
    async decide(ctx) {
      const d = await config.decide(ctx);
      const rm = await mapLimit(storeInstances(ctx), readConcurrency(ctx.opts), async (inst) => {
        const exec = await executorFor(ctx, inst);
        return (await exec.stat(previousKeyPath(inst), { sudo: true })).exists
          ? ({ title: `delete ${previousKeyPath(inst)} on ${inst.host}`, run: async () => exec.remove(previousKeyPath(inst)) } as Action)
          : undefined;
      });
      const actions = [...d.actions, ...rm.filter((a): a is Action => a !== undefined)];
      return actions.length ? { actions, concurrency: ctx.opts.concurrency } : noop('no previous key left');
    },
  };
}

export function promoteKeyStep(): Step<TlsContext> {
  return {
    id: 'promote-key',
    title: 'The new master key becomes the current one on this machine (the old one is kept aside)',
    async decide(ctx) {
      const k = localKeys(ctx);
      if (!fs.existsSync(k.next)) return noop('no rotation in progress');
      const retired = `${k.current}.retired-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
      return { actions: [{ title: `move ${k.current} to ${retired}, ${k.next} to ${k.current}`, run: async () => { fs.renameSync(k.current, retired); fs.renameSync(k.next, k.current); } }] };
    },
  };
}

export function recordEncryptionStep(method: Method): Step<TlsContext> {
  return {
    id: 'record-encryption',
    title: 'Record the encryption state',
    async decide(ctx) {
      const meta = readMeta(ctx.cluster.metaFile) ?? { enableTls: false };
      return { actions: [{ title: `write ${ctx.cluster.metaFile} (encryption: ${method})`, run: async () => writeMeta(ctx.cluster.metaFile, { ...meta, encryption: { enabled: method !== 'plaintext', method } }) }] };
    },
  };
}

export function checkMasterKeyText(text: string, file: string): string {
  if (!isMasterKey(text)) {
    throw Object.assign(new Error(`${file}: a master key file must hold exactly 64 hex characters and a newline (256 bits)`), {
      suggestion: "make one with: openssl rand -hex 32 > master.key (tikv-ctl 3.x's random-hex output is not a valid v4+ key)",
    });
  }
  return text;
}

/**
 * What one store's host says about encryption at rest, with no journal and no local key: its
 * config, tiseal's key files, whether its data dir holds a key dictionary (the store has run with
 * encryption: its data keys are sealed under the master key it last started with), and whether
 * it started after its settings last changed.
 */
export interface StoreEncryption {
  inst: Instance;
  method: string;
  /** Paths the config names (file master keys only). */
  masterKeyPath?: string;
  previousKeyPath?: string;
  /** tiseal's key files on the host (read as root, no symlink followed). */
  masterKey?: string;
  previousKey?: string;
  dict: boolean;
  /** Not active, or started before its config or key files last changed: a restart is owed. */
  pending: boolean;
  /** A tiseal encrypt run began after the store last started (its backup dir, named after the run, says when). */
  tisealSinceStart: boolean;
}

/** `<deploy>/backup/tiseal-encrypt-<ms>`: the backups of the run `encrypt-<ms>` (the run id the encrypt command gives). */
const ENCRYPT_RUN = /\/tiseal-encrypt-(\d{13})$/;

export async function readStoreEncryption(ctx: TlsContext, inst: Instance): Promise<StoreEncryption> {
  const exec = await executorFor(ctx, inst);
  const file = encryptionConfigFile(inst)!;
  const text = (await readRemoteText(exec, file)) ?? '';
  const cfg = readEncryption(TOML.parse(text) as TomlTable);
  // find does not follow symlinks (-P); TiFlash keeps it one level down (<data>/flash).
  const dict = inst.dataDir ? /\S/.test((await exec.exec(`find ${shq(inst.dataDir)} -maxdepth 2 -name key.dict -type f 2>/dev/null | head -n 1`, { sudo: true, allowFailure: true })).stdout) : false;
  const unit = (await unitStates(exec, [inst.unit])).get(inst.unit);
  const newest = await newestMtimeUs(exec, [file, masterKeyPath(inst), previousKeyPath(inst)]);
  const b = shq(path.posix.join(inst.deployDir, 'backup'));
  const runs = (await exec.exec(`for p in ${b}/tiseal-encrypt-*; do if [ -d "$p" ] && [ ! -L "$p" ]; then echo "$p"; fi; done`, { sudo: true, allowFailure: true })).stdout;
  const lastRunMs = Math.max(0, ...runs.split('\n').map((l) => Number(ENCRYPT_RUN.exec(l.trim())?.[1] ?? 0)));
  return {
    inst,
    method: cfg.method,
    masterKeyPath: cfg.masterKey,
    previousKeyPath: cfg.previousMasterKey,
    masterKey: await readRemoteText(exec, masterKeyPath(inst)),
    previousKey: await readRemoteText(exec, previousKeyPath(inst)),
    dict,
    pending: !unit || unit.activeState !== 'active' || unit.activeEnterUs < newest,
    tisealSinceStart: lastRunMs * 1000 > (unit?.activeEnterUs ?? 0),
  };
}

export const readStoresEncryption = (ctx: TlsContext) => mapLimit(storeInstances(ctx), readConcurrency(ctx.opts), (i) => readStoreEncryption(ctx, i));

/** A store that runs (or ran) with encryption: its data needs the master key it was started with. */
const usesKey = (s: StoreEncryption) => s.dict || s.method !== 'plaintext' || s.masterKeyPath !== undefined;
const digest = (k: string) => createHash('sha256').update(k).digest('hex').slice(0, 16);
const FROM_HOSTS = 'decided from the hosts';

/**
 * Did a killed encrypt run leave the stores mid-change? A store owes a restart and a tiseal run
 * began after it last started. A store broken by hand since tiseal's last run is not one: it is
 * still refused by preflight.
 */
export function storesMidChange(stores: StoreEncryption[]): string | undefined {
  const owed = stores.filter((s) => s.pending && s.tisealSinceStart && usesKey(s));
  return owed.length ? `${owed.map((s) => `${s.inst.unit} on ${s.inst.host}`).join(', ')} did not restart since its encryption settings changed: converging (${FROM_HOSTS})` : undefined;
}

/**
 * This machine's master key files when a run was killed or the state dir is another machine's:
 *  - a rotation killed inside its promote (master.key moved aside, master.key.next not yet in its
 *    place) is finished when every store's master.key is the new key;
 *  - no key here while the stores use one: it is copied from the hosts (where it lives by design)
 *    when every store holds the same valid key at tiseal's path, and refused otherwise. Never a new
 *    key: a store restarted with a key that did not seal its dictionary does not start.
 * `given`: `encrypt enable --master-key-file`, the operator's word for the current key; refused
 * only when every store holds one other key.
 */
export async function recoverLocalKeys(ctx: TlsContext, stores: StoreEncryption[], dryRun: boolean, given?: string): Promise<string | undefined> {
  const k = localKeys(ctx);
  if (fs.existsSync(k.current)) return undefined;
  const using = stores.filter(usesKey);
  if (using.length === 0) return undefined;
  const next = read(k.next);
  const refuse = (what: string) =>
    new StepError(`no master key in ${k.current}, and ${what}`, { suggestion: `copy master.key from the machine that ran \`tiseal encrypt\` (its <state dir>/clusters/${ctx.cluster.name}/encryption/) to ${k.current} (0600), or give the key the stores use to \`tiseal encrypt enable --master-key-file\`; nothing was changed` });
  const held = new Set(using.map((s) => s.masterKey ?? ''));
  if (given !== undefined) {
    const only = held.size === 1 ? [...held][0] : undefined;
    if (only !== undefined && isMasterKey(only) && only !== given) {
      throw new StepError(`--master-key-file is not the master key all ${using.length} stores use (SHA-256 ${digest(only)}…, ${using[0].inst.host}:${masterKeyPath(using[0].inst)}): restarted with it they could not open their data`, { suggestion: 'give the key the stores use, or change it with `tiseal encrypt rotate-key --master-key-file` once this machine holds the current one; nothing was changed' });
    }
    return undefined; // the key steps store and push the given key
  }
  const stray = using.find((s) => s.masterKeyPath !== masterKeyPath(s.inst));
  if (stray) throw refuse(`${stray.inst.host}:${encryptionConfigFile(stray.inst)} names the master key ${stray.masterKeyPath ?? '(none, plaintext)'}, not tiseal's ${masterKeyPath(stray.inst)}`);
  if (held.size !== 1 || !isMasterKey([...held][0])) {
    const bad = using.find((s) => !s.masterKey || !isMasterKey(s.masterKey)) ?? using[1];
    throw refuse(`the stores do not hold one valid master key (${bad.inst.host}:${masterKeyPath(bad.inst)} ${bad.masterKey === undefined ? 'is missing' : isMasterKey(bad.masterKey) ? `differs from ${using[0].inst.host}'s` : 'is not 64 hex characters and a newline'})`);
  }
  const key = [...held][0];
  if (dryRun) throw new StepError(`no master key in ${k.current}; the stores use one (SHA-256 ${digest(key)}…)`, { suggestion: 'run the same command without --dry-run: it copies that key from the hosts first' });
  if (next === key) {
    fs.renameSync(k.next, k.current);
    return `a killed \`encrypt rotate-key\` had moved ${k.current} aside; every store's master.key is ${k.next}, so it is now the current key (${FROM_HOSTS})`;
  }
  await writeFileAtomic(k.current, key, 0o600);
  return `no master key was on this machine: the one all ${using.length} stores use (SHA-256 ${digest(key)}…, ${using[0].inst.host}:${masterKeyPath(using[0].inst)}) is now in ${k.current} (${FROM_HOSTS})`;
}
