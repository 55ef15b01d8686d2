import * as fs from 'fs';
import * as path from 'path';
import { localIoError } from '../errors';

export type JournalEvent =
  | { type: 'run-start'; op: string; runId: string; at: string; argv?: string[] }
  | { type: 'step-start'; step: string; at: string }
  | { type: 'step-done'; step: string; at: string; note?: string }
  | { type: 'run-done'; op: string; runId: string; at: string };

const str = (v: unknown) => typeof v === 'string';

/** A line that is a journal event, or undefined (null, a number, a torn or foreign line). */
function parseEvent(line: string): JournalEvent | undefined {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!e || typeof e !== 'object' || Array.isArray(e)) return undefined;
  switch (e.type) {
    case 'run-start':
    case 'run-done':
      return str(e.op) && str(e.runId) ? (e as JournalEvent) : undefined;
    case 'step-start':
    case 'step-done':
      return str(e.step) ? (e as JournalEvent) : undefined;
    default:
      return undefined;
  }
}

/**
 * Append-only, fsynced record of a run's steps (`journal.jsonl`). A re-run reads it to resume:
 * steps recorded done are re-checked and skipped, the interrupted one is redone idempotently.
 * Read line by line: a line that is not an event is reported (with its number) and skipped, so a
 * damaged line never hides the events after it.
 */
export class Journal {
  private events: JournalEvent[] = [];
  /** What was wrong with the file, one message per line (shown as warnings). */
  readonly problems: string[] = [];
  /** A crash mid-append left a last line without its newline: cut it (or end it) before appending. */
  private tail?: { offset: number; keep: boolean };

  constructor(private file: string) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw localIoError(e, file, 'read the journal', `it must be tiseal's journal file; move it aside (mv ${file} ${file}.bad) to start without the record of earlier runs`);
    }
    const lines = text.split('\n');
    const last = lines.pop()!; // '' when the file ends with a newline
    lines.forEach((line, i) => {
      if (!line.trim()) return;
      const e = parseEvent(line);
      if (e) this.events.push(e);
      else this.problems.push(`${file} line ${i + 1} is not a journal event (ignored): ${JSON.stringify(line.slice(0, 80))}`);
    });
    if (last.trim()) {
      const e = parseEvent(last);
      const offset = Buffer.byteLength(text) - Buffer.byteLength(last);
      if (e) this.events.push(e);
      else this.problems.push(`${file} line ${lines.length + 1} is torn (a write cut short by a crash); it is cut off before the next entry`);
      this.tail = { offset, keep: e !== undefined };
    }
  }

  /** The run in progress (started, not done), if any. */
  openRun(): { op: string; runId: string; argv?: string[]; done: Set<string>; started: Set<string> } | undefined {
    let run: { op: string; runId: string; argv?: string[]; done: Set<string>; started: Set<string> } | undefined;
    for (const e of this.events) {
      if (e.type === 'run-start') run = { op: e.op, runId: e.runId, argv: Array.isArray(e.argv) ? e.argv.map(String) : undefined, done: new Set(), started: new Set() };
      else if (e.type === 'run-done') run = undefined;
      else if (run && e.type === 'step-start') run.started.add(e.step);
      else if (run && e.type === 'step-done') run.done.add(e.step);
    }
    return run;
  }

  append(e: JournalEvent): void {
    try {
      fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
      const fd = fs.openSync(this.file, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o600);
      try {
        let prefix = '';
        if (this.tail) {
          if (this.tail.keep) prefix = '\n';
          else fs.ftruncateSync(fd, this.tail.offset);
        }
        fs.writeSync(fd, prefix + JSON.stringify(e) + '\n');
        fs.fsyncSync(fd);
        this.tail = undefined;
      } finally {
        fs.closeSync(fd);
      }
    } catch (err) {
      throw localIoError(err, this.file, 'append to the journal');
    }
    this.events.push(e);
  }
}
