/** An error whose message is the whole story for the person at the terminal (no stack trace). */
export class CliError extends Error {
  override name = 'CliError';
  /** A network error or a 5xx: the same request may succeed when sent again. */
  readonly retryable: boolean;

  constructor(message: string, opts: { retryable?: boolean } = {}) {
    super(message);
    this.retryable = opts.retryable ?? false;
  }
}
