import { CliError, configError } from '../cli-error.ts';

/**
 * `stagedoor gateway`: the data plane. It loads only the gateway package (node built-ins, ws and the
 * contract), never the broker's storage: a gateway has no database access.
 */
export async function runGatewayRole(opts: { enroll?: string }): Promise<void> {
  const { runGateway, GatewayConfigError, EnrollmentError } = await import('@stagedoor/gateway');
  try {
    await runGateway({ enrollToken: opts.enroll });
  } catch (err) {
    if (err instanceof GatewayConfigError) throw configError(err.problems);
    if (err instanceof EnrollmentError) throw new CliError(err.message);
    throw err;
  }
}
