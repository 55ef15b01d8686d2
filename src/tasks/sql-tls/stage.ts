import * as TOML from '@iarna/toml';
import { editTomlText } from '../../components/toml-text';
import * as path from 'path';
import type { Action, Step } from '../../engine/step';
import { applySqlTlsKeys, sqlTlsPaths } from '../../sql/tidb-keys';
import type { Instance } from '../../topology/types';
import { mapLimit, readConcurrency } from '../../util/concurrency';
import { executorFor } from '../context';
import { readRemoteText } from '../remote';
import { fileAction } from '../certs/stage';
import { SqlTlsContext, tidbInstances } from './context';

/** tidb.toml of an instance (TiUP: <deploy>/conf/tidb.toml). */
export const tidbToml = (inst: Instance) => inst.configFiles.find((f) => path.posix.basename(f) === 'tidb.toml') ?? path.posix.join(inst.deployDir, 'conf', 'tidb.toml');

/** Files and config keys one TiDB needs for the wanted SQL TLS state, in write order (key, certificates, config). */
export async function planSqlTlsFiles(ctx: SqlTlsContext, inst: Instance): Promise<Action[]> {
  const exec = await executorFor(ctx, inst);
  const actions: Action[] = [];
  const on = ctx.sql.want === 'on';
  const p = sqlTlsPaths(inst);
  if (on) {
    const ca = await readRemoteText(exec, p.ca);
    const cert = await readRemoteText(exec, p.cert);
    const key = await readRemoteText(exec, p.key);
    if (cert === undefined || key === undefined || !ctx.sql.leafGood!(inst, cert, key)) {
      const leaf = await ctx.sql.leafFor!(inst, [], cert);
      actions.push(fileAction(ctx, inst, p.key, key, leaf.keyPem, 0o600));
      actions.push(fileAction(ctx, inst, p.cert, cert, leaf.certPem, 0o644));
    } else {
      const st = await exec.stat(p.key, { sudo: true });
      if ((st.mode & 0o777) !== 0o600 || st.owner !== ctx.user) {
        actions.push({ ...fileAction(ctx, inst, p.key, key, key, 0o600), title: `fix owner/mode of tls/sql.pem (was ${(st.mode & 0o777).toString(8)} ${st.owner}) of ${inst.id}` });
      }
    }
    if (ca !== ctx.sql.caPem) actions.push(fileAction(ctx, inst, p.ca, ca, ctx.sql.caPem!, 0o644));
  }
  const file = tidbToml(inst);
  const text = (await readRemoteText(exec, file)) ?? '';
  const doc = TOML.parse(text) as Record<string, unknown>;
  // Disable keeps the files (as `tls disable` keeps the cluster certificates): only the keys go.
  if (applySqlTlsKeys(doc, on ? { ca: p.ca, cert: p.cert, key: p.key, tlsVersion: ctx.sql.flags.tlsVersion } : null)) {
    // Only the ssl-* keys change: every other byte of tidb.toml stays as TiUP or the operator wrote it.
    actions.push(fileAction(ctx, inst, file, text, editTomlText(text, doc, `${inst.host}:${file}`), 0o644));
  }
  return actions;
}

/** Every TiDB's files and tidb.toml, backed up and replaced atomically, before the first restart. */
export const sqlStageStep: Step<SqlTlsContext> = {
  id: 'sql-stage',
  title: 'Stage SQL certificates and tidb.toml [security] ssl-* on every TiDB (before any restart)',
  async decide(ctx) {
    const insts = tidbInstances(ctx);
    const per = await mapLimit(insts, readConcurrency(ctx.opts), (inst) => planSqlTlsFiles(ctx, inst));
    const actions: Action[] = insts
      .map((inst, i) => ({ inst, files: per[i] }))
      .filter(({ files }) => files.length > 0)
      .map(({ inst, files }) => ({
        title: `${inst.id} on ${inst.host}: ${files.map((f) => f.title.replace(/ of .*$/, '')).join(', ')}`,
        diff: files.map((f) => f.diff ?? '').join(''),
        run: async () => {
          for (const f of files) await f.run();
        },
      }));
    if (actions.length === 0) return { actions, reason: `every TiDB's files already say SQL TLS ${ctx.sql.want}` };
    return { actions, concurrency: ctx.opts.concurrency };
  },
};
