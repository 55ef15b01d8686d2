import * as fs from 'fs';
import * as path from 'path';

/**
 * Logs in the TiDB components' unified format
 * `[2025/01/02 03:04:05.678 +00:00] [INFO] [emulator] ["message"] [key=value]`
 * to the --log-file (when given) and to stderr, so both the component log and journald see it.
 */
export type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'FATAL';

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

export function timestamp(d = new Date()): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  return (
    `${d.getFullYear()}/${pad(d.getMonth() + 1)}/${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)} ` +
    `${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`
  );
}

function fieldValue(v: unknown): string {
  const s = typeof v === 'string' ? v : typeof v === 'bigint' ? v.toString() : JSON.stringify(v);
  return /^[A-Za-z0-9_.:/\-+]*$/.test(s) && s !== '' ? s : JSON.stringify(s);
}

export class Logger {
  private fd: number | undefined;
  constructor(private readonly component: string, logFile?: string) {
    if (logFile) this.setFile(logFile);
  }

  setFile(logFile: string): void {
    fs.mkdirSync(path.dirname(path.resolve(logFile)), { recursive: true });
    this.fd = fs.openSync(logFile, 'a');
  }

  /** Raw line (used to copy the etcd child's output into the PD log). */
  raw(line: string): void {
    const text = line.endsWith('\n') ? line : `${line}\n`;
    if (this.fd !== undefined) fs.writeSync(this.fd, text);
    process.stderr.write(text);
  }

  log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
    const extra = Object.entries(fields)
      .map(([k, v]) => ` [${k}=${fieldValue(v)}]`)
      .join('');
    this.raw(`[${timestamp()}] [${level}] [${this.component}-emulator] [${JSON.stringify(msg)}]${extra}`);
  }

  info(msg: string, fields?: Record<string, unknown>): void {
    this.log('INFO', msg, fields);
  }
  warn(msg: string, fields?: Record<string, unknown>): void {
    this.log('WARN', msg, fields);
  }
  error(msg: string, fields?: Record<string, unknown>): void {
    this.log('ERROR', msg, fields);
  }

  /** Logs at FATAL and exits: the real components exit 1 on a fatal log. */
  fatal(msg: string, fields?: Record<string, unknown>, code = 1): never {
    this.log('FATAL', msg, fields);
    process.exit(code);
  }
}
