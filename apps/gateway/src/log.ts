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
  const min = LEVELS[level];
  const emit = (lvl: LogLevel, fields: Record<string, unknown>, msg: string) => {
    if (LEVELS[lvl] < min) return;
    const out: Record<string, unknown> = { level: LEVELS[lvl], time: new Date().toISOString(), ...base };
    for (const [k, v] of Object.entries(fields)) out[k] = v instanceof Error ? { message: v.message, code: (v as NodeJS.ErrnoException).code } : v;
    out.msg = msg;
    write(`${JSON.stringify(out)}\n`);
  };
  return {
    debug: (f, m) => emit('debug', f, m),
    info: (f, m) => emit('info', f, m),
    warn: (f, m) => emit('warn', f, m),
    error: (f, m) => emit('error', f, m),
    child: (fields) => createLog(level, { ...base, ...fields }, write),
  };
}
