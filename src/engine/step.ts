/**
 * A step reads facts, decides, and only then acts: `decide` is read-only and returns the actions
 * that would bring the hosts to the wanted state (none = a visible no-op with its reason). The
 * runner either applies the actions or, for --dry-run, prints them: steps never look at dry-run.
 */
export interface Action {
  /** "pd-2379 @ 10.0.1.1: rewrite conf/pd.toml" */
  title: string;
  /** Unified diff of a remote file this action rewrites (shown by --dry-run). */
  diff?: string;
  /** Do it. May return a short note shown next to the title. */
  run(): Promise<void | string>;
}

export interface Decision {
  actions: Action[];
  /** Why nothing needs doing (when actions is empty). */
  reason?: string;
  /** Actions of this step may run in parallel (up to this many). */
  concurrency?: number;
}

export interface Step<C> {
  id: string;
  title: string;
  decide(ctx: C): Promise<Decision>;
  /** Gate after the actions ran (health, verification). Also read-only. */
  verify?(ctx: C): Promise<void>;
  /**
   * On resume, a step recorded done is decided again ('recheck', the default: decide is
   * idempotent and finds nothing to do), or skipped ('skip-if-done') when re-deciding could undo
   * progress made by later steps.
   */
  resume?: 'recheck' | 'skip-if-done';
}

export const noop = (reason: string): Decision => ({ actions: [], reason });
