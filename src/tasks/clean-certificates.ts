import * as fs from 'fs';
import type { Action, Step } from '../engine/step';
import { noop } from '../engine/step';
import { tlsPaths } from '../components';
import { shq } from '../util/shell';
import { executorFor, TlsContext } from './context';

/** `tls disable --clean-certificate`: remove tls/ on every host and the local CA and client cert. */
export const cleanCertificatesStep: Step<TlsContext> = {
  id: 'clean-certificates',
  title: 'Remove certificates from hosts and this machine',
  async decide(ctx) {
    const actions: Action[] = [];
    for (const inst of ctx.topology.instances) {
      const exec = await executorFor(ctx, inst);
      const dir = tlsPaths(inst).dir;
      if ((await exec.stat(dir, { sudo: true })).exists) {
        actions.push({ title: `remove ${dir} on ${inst.host}`, run: async () => void (await exec.exec(`rm -rf ${shq(dir)}`, { sudo: true })) });
      }
    }
    const local = ctx.cluster.tlsDir;
    if (fs.existsSync(local)) actions.push({ title: `remove ${local} (CA and client certificate)`, run: async () => fs.rmSync(local, { recursive: true, force: true }) });
    return actions.length ? { actions } : noop('no certificates left');
  },
};
