import * as fs from 'fs';
import * as path from 'path';

export type JournalEvent =
  | { type: 'run-start'; op: string; runId: string; at: string; argv?: string[] }
  | { type: 'step-start'; step: string; at: string }
  | { type: 'step-done'; step: string; at: string; note?: string }
  | { type: 'run-done'; op: string; runId: string; at: string };

/**
 * Append-only, fsynced record of a run's steps (`journal.jsonl`). A re-run reads it to resume:
 * steps recorded done are re-checked and skipped, the interrupted one is redone idempotently.
 */
export class Journal {
  private events: JournalEvent[] = [];
  constructor(private file: string) {
    if (fs.existsSync(file)) {
      for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        if (!line.trim()) continue;
        try {
          this.events.push(JSON.parse(line));
        } catch {
          break; // a torn last line from a crash: ignore it and everything after
        }
      }
    }
  }

  /** The run in progress (started, not done), if any. */
  openRun(): { op: string; runId: string; done: Set<string>; started: Set<string> } | undefined {
    let run: { op: string; runId: string; done: Set<string>; started: Set<string> } | undefined;
    for (const e of this.events) {
      if (e.type === 'run-start') run = { op: e.op, runId: e.runId, done: new Set(), started: new Set() };
      else if (e.type === 'run-done') run = undefined;
      else if (run && e.type === 'step-start') run.started.add(e.step);
      else if (run && e.type === 'step-done') run.done.add(e.step);
    }
    return run;
  }

  append(e: JournalEvent): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const fd = fs.openSync(this.file, 'a', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify(e) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.events.push(e);
  }
}
