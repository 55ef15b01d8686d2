import { StepError } from '../../errors';
import type { Step } from '../../engine/step';
import { noop } from '../../engine/step';
import { waitFor } from '../../util/concurrency';
import type { TlsContext } from '../context';

const withScheme = (url: string, scheme: string) => url.replace(/^https?:\/\//, `${scheme}://`);
const onScheme = (urls: string[], scheme: string) => urls.length > 0 && urls.every((u) => u.startsWith(`${scheme}://`));

/**
 * PD keeps the peer URLs stored in etcd over the ones in its flags, so a restart alone leaves
 * them on the old scheme: rewrite them with etcd's member update (through PD's client port).
 */
export const peerUrlsStep: Step<TlsContext> = {
  id: 'peer-urls',
  title: 'Update PD peer URLs (etcd member update) and verify',
  async decide(ctx) {
    const scheme = ctx.want === 'on' ? 'https' : 'http';
    const members = await ctx.pd.etcdMembers();
    const leaving = ctx.plannedRemovals ?? new Set<string>();
    const todo = members.filter((m) => !leaving.has(m.name) && !onScheme(m.peerUrls, scheme));
    if (todo.length === 0) return noop(`every peer URL is ${scheme}`);
    return {
      actions: todo.map((m) => ({
        title: `member update ${m.name}: ${m.peerUrls.join(',')} → ${m.peerUrls.map((u) => withScheme(u, scheme)).join(',')}`,
        run: async () => ctx.pd.etcdMemberUpdate(m.id, m.peerUrls.map((u) => withScheme(u, scheme))),
      })),
    };
  },
  async verify(ctx) {
    const scheme = ctx.want === 'on' ? 'https' : 'http';
    try {
      await waitFor(
        `every PD member to show ${scheme} peer and client URLs`,
        async () => {
          const { members } = await ctx.pd.members();
          return members.every((m) => onScheme(m.peerUrls, scheme) && onScheme(m.clientUrls, scheme));
        },
        { timeoutMs: 30_000 },
      );
    } catch (e) {
      const { members } = await ctx.pd.members().catch(() => ({ members: [] as Array<{ name: string; peerUrls: string[]; clientUrls: string[] }> }));
      throw new StepError(`PD members do not all show ${scheme} URLs: ${members.map((m) => `${m.name} peer=${m.peerUrls.join(',')} client=${m.clientUrls.join(',')}`).join('; ')}`, {
        suggestion: 're-run the same command to retry, or `tiseal tls disable` to roll back',
        cause: e,
      });
    }
  },
};
