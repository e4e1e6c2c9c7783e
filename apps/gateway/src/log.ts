/** A small JSON-lines logger: the gateway carries no logging library (it imports only node built-ins, ws and the contract). */

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: 100 } as const;
export type LogLevel = keyof typeof LEVELS;
export const LOG_LEVELS = Object.keys(LEVELS) as LogLevel[];

export interface Log {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
  child(fields: Record<string, unknown>): Log;
}

export function createLog(level: LogLevel, base: Record<string, unknown> = {}, write: (line: string) => void = (l) => process.stdout.write(l)): Log {
  return new JsonLog(LEVELS[level], base, write);
}

/**
 * One object per logger, its methods on the prototype: a child log (a WebSocket tunnel session keeps
 * two while it lasts) costs its fields and little more; as a set of closures each cost about 1.9 KiB.
 */
class JsonLog implements Log {
  constructor(
    private readonly min: number,
    private readonly base: Record<string, unknown>,
    private readonly write: (line: string) => void,
  ) {}

  debug(fields: Record<string, unknown>, msg: string): void {
    this.#emit('debug', fields, msg);
  }

  info(fields: Record<string, unknown>, msg: string): void {
    this.#emit('info', fields, msg);
  }

  warn(fields: Record<string, unknown>, msg: string): void {
    this.#emit('warn', fields, msg);
  }

  error(fields: Record<string, unknown>, msg: string): void {
    this.#emit('error', fields, msg);
  }

  child(fields: Record<string, unknown>): Log {
    return new JsonLog(this.min, { ...this.base, ...fields }, this.write);
  }

  #emit(lvl: LogLevel, fields: Record<string, unknown>, msg: string): void {
    if (LEVELS[lvl] < this.min) return;
    const out: Record<string, unknown> = { level: LEVELS[lvl], time: new Date().toISOString(), ...this.base };
    for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? { message: v.message, code: (v as NodeJS.ErrnoException).code } : v;
    out.msg = msg;
    this.write(`${JSON.stringify(out)}\n`);
  }
}
