import pino, { type Logger } from 'pino';

/** Paths that must never reach a log line, whatever route or job logs them. */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  '*.password',
  '*.newPassword',
  '*.secret',
  '*.secretAccessKey',
  '*.token',
  'password',
  'secret',
  'token',
];

export function createLogger(opts: { level: string; nodeId: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      level: opts.level,
      base: { node: opts.nodeId },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
