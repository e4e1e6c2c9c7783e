/** An error whose message is the whole story for the person at the terminal (no stack trace). */
export class CliError extends Error {
  override name = 'CliError';
}
