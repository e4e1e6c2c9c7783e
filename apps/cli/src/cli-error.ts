/** An error whose message is the whole story for the person at the terminal (no stack trace). */
export class CliError extends Error {
  override name = 'CliError';
  /** A network error or a 5xx: the same request may succeed when sent again. */
  readonly retryable: boolean;
  /** 1 for a failure, 2 for bad configuration (as the broker's own ConfigError). */
  readonly exitCode: number;

  constructor(message: string, opts: { retryable?: boolean; exitCode?: number } = {}) {
    super(message);
    this.retryable = opts.retryable ?? false;
    this.exitCode = opts.exitCode ?? 1;
  }
}

/** A bad environment variable or option of a role (gateway, agent): exit code 2, like the broker's. */
export function configError(problems: { variable: string; message: string }[]): CliError {
  return new CliError(`invalid configuration: ${problems.map((p) => `${p.variable}: ${p.message}`).join('; ')}`, { exitCode: 2 });
}

/**
 * Exit codes for errors of modules that only some commands load (the broker's typed errors): a
 * command's implementation registers how to read them, so that `main.ts` never imports the broker
 * to recognise one.
 */
const readers: ((err: unknown) => number | undefined)[] = [];
export function registerExitCodes(reader: (err: unknown) => number | undefined): void {
  readers.push(reader);
}
export function knownExitCode(err: unknown): number | undefined {
  if (err instanceof CliError) return err.exitCode;
  for (const read of readers) {
    const code = read(err);
    if (code !== undefined) return code;
  }
  return undefined;
}
