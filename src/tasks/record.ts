import type { Step } from '../engine/step';
import { readMeta, writeMeta } from '../state/meta';
import type { TlsContext } from './context';

/** Written last, and only after verification, so the local meta never claims more than is true. */
export const recordStep: Step<TlsContext> = {
  id: 'record',
  title: 'Record the verified state',
  async decide(ctx) {
    const file = ctx.cluster.metaFile;
    const meta = readMeta(file) ?? { enableTls: false };
    const enableTls = ctx.want === 'on';
    return {
      actions: [
        {
          title: `write ${file} (enable_tls: ${enableTls})`,
          run: async () => writeMeta(file, { ...meta, enableTls, verifiedAt: new Date().toISOString(), verifyCn: enableTls ? Boolean(ctx.flags.verifyCn) : undefined }),
        },
      ],
    };
  },
};
