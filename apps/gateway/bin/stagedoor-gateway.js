#!/usr/bin/env node
// The gateway alone, without the rest of the `stagedoor` command (same as `stagedoor gateway`):
// for gateway hosts and images that carry only apps/gateway and packages/contract.
import { register } from 'tsx/esm/api';

register();
const { runGateway, GatewayConfigError, EnrollmentError } = await import('../src/index.ts');
const enrollAt = process.argv.indexOf('--enroll');
try {
  await runGateway({ enrollToken: enrollAt > 0 ? process.argv[enrollAt + 1] : undefined });
} catch (err) {
  const known = err instanceof GatewayConfigError || err instanceof EnrollmentError;
  console.error(`stagedoor gateway: ${known ? err.message : (err?.stack ?? err)}`);
  process.exit(err instanceof GatewayConfigError ? 2 : 1);
}
