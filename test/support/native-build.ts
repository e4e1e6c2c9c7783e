import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './processes.ts';

/**
 * The gateway's relay tests run on both engines, the native one included (ADR 0011). `npm install`
 * builds it; this rebuilds it when a source in apps/gateway/native is newer than the build, and fails the run when it
 * cannot be built (`--strict`), rather than letting the native half of the tests fail one by one.
 */
export default function setup(): void {
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'apps/gateway/native/build.mjs'), '--strict'], { stdio: 'inherit' });
}
