/**
 * Keep TiUP's own record true after a switch, so the next `tiup cluster reload | scale-out |
 * upgrade` renders TLS configs (and issues new nodes' certificates from the same CA) instead of
 * reverting the cluster to plaintext. Runs after the record step: only a verified state is written.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { Action, Step } from '../engine/step';
import { noop } from '../engine/step';
import { localIoError } from '../errors';
import { CertStore } from '../pki';
import { exportCAKeyForStore } from '../pki/ca';
import type { TlsContext } from '../tasks/context';
import { unifiedDiff } from '../util/diff';
import { findTiupCluster, tiupHome, TiupCluster } from './home';
import { setEnableTls } from './meta-yaml';
import { writeTiupFile } from './write';

const KEY_MODE = 0o600;
const CERT_MODE = 0o644;

/** Said in the plan when TiUP does not manage the cluster here. */
export function noTiupMetaNote(name: string): string {
  const meta = new TiupCluster(tiupHome(), name).metaFile;
  return `no TiUP metadata at ${meta} (set TIUP_HOME or --cluster-name if TiUP manages this cluster elsewhere): a later \`tiup cluster reload | scale-out | upgrade\` from a TiUP that still records enable_tls false would regenerate the configs as plaintext`;
}

function read(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw localIoError(e, file, 'read', 'check TIUP_HOME, or pass --no-tiup-meta to leave TiUP\'s metadata alone');
  }
}

const stamp = () => new Date().toISOString().replace(/:/g, '');

/** Copy a file into TiUP's backup/ before it is replaced (SpecManager.SaveMeta keeps meta-<time>.yaml there). */
function backup(tiup: TiupCluster, file: string, owner: { uid: number; gid: number }, at: string): string {
  const st = fs.statSync(file);
  const base = path.basename(file);
  const dot = base.lastIndexOf('.');
  const dest = path.join(tiup.backupDir, dot > 0 ? `${base.slice(0, dot)}-${at}${base.slice(dot)}` : `${base}-${at}`);
  // A key is backed up 0600 whatever mode TiUP gave it.
  writeTiupFile(dest, fs.readFileSync(file, 'utf8'), /\.pem$/.test(base) ? KEY_MODE : st.mode & 0o777, owner);
  return dest;
}

export const tiupMetaStep: Step<TlsContext> = {
  id: 'tiup-meta',
  title: "TiUP's metadata: meta.yaml enable_tls and tls/ (local)",
  async decide(ctx) {
    if (!ctx.opts.tiupMeta) return noop('--no-tiup-meta: TiUP\'s metadata left as it is');
    const tiup = findTiupCluster(ctx.cluster.name);
    if (!tiup) {
      const note = noTiupMetaNote(ctx.cluster.name);
      if (!ctx.notes.includes(note)) ctx.notes.push(note);
      return noop(note);
    }
    const on = ctx.want === 'on';
    const dirStat = fs.statSync(tiup.dir);
    const owner = { uid: dirStat.uid, gid: dirStat.gid };
    const at = stamp();
    const actions: Action[] = [];
    if (on) {
      // TiUP issues new nodes' certificates from tls/ca.crt + ca.pem and talks to the cluster with client.crt/.pem.
      const store = new CertStore(ctx.opts.stateDir, ctx.cluster.name);
      const ca = store.loadCA();
      const client = store.loadClient();
      if (!client) throw localIoError(Object.assign(new Error('missing'), { code: 'ENOENT' }), store.clientCertPath, 'read');
      const files: Array<[string, string, number]> = [
        [tiup.caKey, exportCAKeyForStore(ca), KEY_MODE],
        [tiup.caCert, ca.bundlePem, CERT_MODE],
        [tiup.clientKey, client.keyPem, KEY_MODE],
        [tiup.clientCert, client.certPem, CERT_MODE],
      ];
      for (const [file, data, mode] of files) {
        const st = fs.lstatSync(file, { throwIfNoEntry: false });
        const same = st?.isFile() && (st.mode & 0o777) === mode && fs.readFileSync(file, 'utf8') === data;
        if (same) continue;
        actions.push({
          title: `write ${file} (${mode.toString(8).padStart(4, '0')})${st?.isFile() ? ', the old one backed up' : ''}`,
          run: async () => {
            const old = st?.isFile() ? backup(tiup, file, owner, at) : undefined;
            writeTiupFile(file, data, mode, owner);
            return old ? `backup ${old}` : undefined;
          },
        });
      }
      if (ca.info.keyAlgorithm !== 'rsa') ctx.notes.push(`TiUP reads only RSA CA keys (pingcap/tiup pkg/crypto/keys.go): with this ${ca.info.keyAlgorithm} CA a \`tiup cluster scale-out\` cannot issue certificates; add nodes with tiseal instead`);
    } else if (ctx.flags.cleanCertificate && fs.existsSync(tiup.tlsDir)) {
      // What `tiup cluster tls <name> disable --cleanup-certificate` does (pkg/cluster/manager/tls.go).
      actions.push({ title: `remove ${tiup.tlsDir} (TiUP's CA and client certificate)`, run: async () => fs.rmSync(tiup.tlsDir, { recursive: true, force: true }) });
    }
    const text = read(tiup.metaFile);
    const next = setEnableTls(text, on, tiup.metaFile);
    if (next !== text) {
      // Last: TiUP never sees enable_tls: true without the files it needs.
      actions.push({
        title: `set topology.global.enable_tls: ${on} in ${tiup.metaFile} (backed up to ${tiup.backupDir})`,
        diff: unifiedDiff(text, next, tiup.metaFile),
        run: async () => {
          const mode = fs.statSync(tiup.metaFile).mode & 0o777;
          const old = backup(tiup, tiup.metaFile, owner, at);
          writeTiupFile(tiup.metaFile, next, mode, owner);
          return `backup ${old}`;
        },
      });
    }
    return actions.length ? { actions } : noop(`${tiup.metaFile} already records enable_tls: ${on}`);
  },
};
