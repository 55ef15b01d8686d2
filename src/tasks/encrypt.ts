import * as TOML from '@iarna/toml';
import { editTomlText } from '../components/toml-text';
import { randomBytes } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { applyEncryption, encryptionConfigFile, EncryptionSettings, isMasterKey, keyDir, masterKeyPath, Method, previousKeyPath } from '../components/encryption';
import type { TomlTable } from '../components';
import type { Action, Step } from '../engine/step';
import { noop } from '../engine/step';
import { readMeta, writeMeta } from '../state/meta';
import { writeFileAtomic } from '../state/files';
import type { Instance } from '../topology/types';
import { mapLimit } from '../util/concurrency';
import { executorFor, TlsContext } from './context';
import { factKey } from './facts';
import { waitHealthy } from './health';
import { newestMtimeUs, readRemoteText, systemctl, unitStates } from './remote';
import { deployOwner, fileAction } from './stage';

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
      const planned = await mapLimit(storeInstances(ctx), ctx.opts.concurrency, async (inst) => {
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
      const planned = await mapLimit(storeInstances(ctx), ctx.opts.concurrency, async (inst) => {
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
    title: 'Rolling restart of TiKV and TiFlash, one store at a time (each Up before the next)',
    async decide(ctx) {
      const stale = await mapLimit(storeInstances(ctx), ctx.opts.concurrency, async (inst) => {
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
          title: `restart ${inst.unit} on ${inst.host}, wait until its store is Up`,
          run: async () => {
            await systemctl(await executorFor(ctx, inst), 'restart', inst.unit);
            await waitHealthy(ctx, [inst], { tls, timeoutMs: 90_000 });
          },
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
      const rm = await mapLimit(storeInstances(ctx), ctx.opts.concurrency, async (inst) => {
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
