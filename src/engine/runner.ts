import { Listr, ListrTask } from 'listr2';
import type { Journal } from '../state/journal';
import type { Step } from './step';
import { runStats } from '../util/run-stats';
import { terminalSafe } from '../util/terminal';
import { runRecord } from '../util/run-record';

export interface RunOptions {
  dryRun: boolean;
  journal?: Journal;
  /** Steps recorded done by an interrupted run of the same operation (resume). */
  doneBefore?: Set<string>;
  /** Collects the dry-run plan as text lines. */
  plan?: string[];
  /** listr2 renderer: default on a terminal, simple lines otherwise, silent for tests. */
  renderer?: 'default' | 'simple' | 'silent';
}

const now = () => new Date().toISOString();

function indent(text: string, pad = '    '): string {
  return text.replace(/^/gm, pad);
}

/** Turn steps into a listr2 task list that journals, applies or (dry run) describes them. */
export function buildTaskList<C extends object>(steps: Step<C>[], opts: RunOptions): Listr<C> {
  const tasks: ListrTask<C>[] = steps.map((step) => ({
    title: step.title,
    task: async (ctx, task) => {
      // Resume: a step the interrupted run finished is skipped only when re-deciding it could undo
      // later progress (scale-in after scale-out began); every other step re-reads the hosts and
      // finds nothing to do, or redoes what the crash left undone.
      if (!opts.dryRun && step.resume === 'skip-if-done' && opts.doneBefore?.has(step.id)) {
        task.skip(`${step.title}: done by the interrupted run (journal)`);
        runStats.stepSkipped(step.id);
        return;
      }
      if (!opts.dryRun) opts.journal?.append({ type: 'step-start', step: step.id, at: now() });
      runStats.stepStart(step.id);
      const failed = (e: unknown): never => {
        runStats.stepEnd(step.id, 'failed');
        throw e;
      };
      const decision = await step.decide(ctx).catch(failed);
      if (decision.actions.length === 0) {
        task.title = `${step.title}: nothing to do${decision.reason ? ` (${decision.reason})` : ''}`;
        if (opts.dryRun) opts.plan?.push(`- ${step.title}: nothing to do${decision.reason ? ` (${decision.reason})` : ''}`);
        else {
          await step.verify?.(ctx).catch(failed);
          opts.journal?.append({ type: 'step-done', step: step.id, at: now() });
        }
        runStats.stepEnd(step.id, 'nothing-to-do');
        return;
      }
      if (opts.dryRun) {
        opts.plan?.push(`- ${step.title}:`);
        for (const a of decision.actions) {
          opts.plan?.push(`    would ${a.title}`);
          if (a.diff) opts.plan?.push(indent(terminalSafe(a.diff.trimEnd()), '      ')); // file contents come from hosts
        }
        task.title = `${step.title}: would do ${decision.actions.length} action(s)`;
        runStats.stepEnd(step.id, 'done');
        return;
      }
      const actions = decision.actions.map(
        (a): ListrTask<C> => ({
          title: a.title,
          task: async (_c, sub) => {
            runRecord.noteChange(); // an action of the plan began: this run changes something
            const note = await a.run().catch(failed);
            if (note) sub.title = `${a.title}: ${note}`;
          },
        }),
      );
      const concurrent = decision.concurrency && decision.concurrency > 1 ? decision.concurrency : false;
      return task.newListr(
        [
          // Untitled wrapper: the actions (maybe in parallel) must all finish before the gate and the journal entry.
          { task: (_c, sub) => sub.newListr(actions, { concurrent, exitOnError: true }) },
          {
            task: async (c) => {
              await step.verify?.(c).catch(failed);
              opts.journal?.append({ type: 'step-done', step: step.id, at: now() });
              runStats.stepEnd(step.id, 'done');
            },
          },
        ],
        { concurrent: false, exitOnError: true },
      );
    },
  }));
  return new Listr<C>(tasks, {
    concurrent: false,
    exitOnError: true,
    renderer: opts.renderer ?? 'default',
    fallbackRenderer: 'simple',
    rendererOptions: { collapseSubtasks: false, collapseSkips: false, showErrorMessage: true },
    fallbackRendererOptions: { timestamp: undefined },
    silentRendererCondition: opts.renderer === 'silent',
  } as ConstructorParameters<typeof Listr<C>>[1]);
}
