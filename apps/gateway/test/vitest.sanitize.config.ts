import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mergeConfig } from 'vitest/config';
import base from '../../../vitest.config.ts';

/**
 * The relay tests under AddressSanitizer and UndefinedBehaviorSanitizer (docs/gateway.md, "The native
 * relay"):
 *
 *   STAGEDOOR_RELAY_SANITIZE=address,undefined npx vitest run --config apps/gateway/test/vitest.sanitize.config.ts \
 *     apps/gateway/test/{port-forward,relay-stress,workers,proxy-protocol,native-faults}.test.ts
 *
 * The native build (global setup) then compiles the relay with the sanitizers, and only the test
 * processes get their runtimes preloaded (Node itself is not instrumented; preloading them into the
 * harness's PostgreSQL tools hangs `runuser`). Any report ends the process, so it fails the run. The
 * next ordinary run rebuilds the relay without them.
 */
const runtime = (lib: string) => execFileSync(process.env.CC || 'cc', [`-print-file-name=${lib}`], { encoding: 'utf8' }).trim();

export default mergeConfig(base, {
  root: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..'),
  test: {
    env: {
      LD_PRELOAD: [runtime('libasan.so'), runtime('libubsan.so')].join(':'),
      // Node's own allocations are not ours to judge at exit; every error inside the relay halts.
      ASAN_OPTIONS: 'detect_leaks=0:halt_on_error=1:abort_on_error=1',
      UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1',
    },
  },
});
