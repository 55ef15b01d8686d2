import * as fs from 'fs';
import * as path from 'path';
import type { Action, Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { tlsPaths } from '../../components';
import { sqlTlsPaths } from '../../sql/tidb-keys';
import { shq } from '../../util/shell';
import { executorFor, TlsContext } from '../context';

/** tls/ copies in tiseal's backups of an instance (`<deploy>/backup/tiseal-*\/tls`): old keys live there too. */
async function backedUpTlsDirs(exec: import('../../ssh/executor').Executor, deployDir: string): Promise<string[]> {
  const root = `${deployDir}/backup`;
  // find -P (the default) follows no symlink; the paths it prints are removed with exec.remove, which checks again.
  const r = await exec.exec(`find ${shq(root)} -mindepth 2 -maxdepth 2 -name tls -path ${shq(`${root}/tiseal-*/tls`)} 2>/dev/null; true`, { sudo: true, allowFailure: true });
  return r.stdout.split('\n').filter((l) => l.startsWith(`${root}/tiseal-`) && path.posix.basename(l) === 'tls');
}

/** `tls disable --clean-certificate`: remove tls/ (and its backups) on every host and the local CA and client cert. */
export const cleanCertificatesStep: Step<TlsContext> = {
  id: 'clean-certificates',
  title: 'Remove certificates and their backups from hosts, and the CA from this machine',
  async decide(ctx) {
    const actions: Action[] = [];
    for (const inst of ctx.topology.instances) {
      const exec = await executorFor(ctx, inst);
      const p = tlsPaths(inst);
      // A TiDB that also serves MySQL clients keeps tls/sql-* (`sql-tls`, its own CA): tidb.toml still
      // points at them, so only the cluster files go and the directory stays.
      const keepSql = inst.role === 'tidb' && (await exec.stat(sqlTlsPaths(inst).cert, { sudo: true })).exists;
      const here = (await exec.stat(p.dir, { sudo: true })).exists;
      const targets = !here ? [] : keepSql ? [p.ca, p.cert, p.key] : [p.dir];
      for (const d of [...targets, ...(await backedUpTlsDirs(exec, inst.deployDir))]) actions.push({ title: `remove ${d} on ${inst.host}`, run: async () => exec.remove(d) });
    }
    const local = ctx.cluster.tlsDir;
    if (fs.existsSync(local)) actions.push({ title: `remove ${local} (CA and client certificate)`, run: async () => fs.rmSync(local, { recursive: true, force: true }) });
    return actions.length ? { actions } : noop('no certificates left');
  },
};
