import { defineConfig } from 'vitest/config';

// Tests run in a non-UTC zone so that no code can silently depend on the host being UTC.
process.env.TZ = 'America/Los_Angeles';

export default defineConfig({
  test: {
    include: ['apps/*/test/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'deploy/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // First: fail at once, naming the Debian package, when the machine lacks a program or file the tests need.
    globalSetup: ['test/support/packages-check.ts', 'test/support/global-setup.ts', 'test/support/web-build.ts', 'test/support/native-build.ts'],
    // Hang guards, not speed limits: on a loaded two-core machine (CI shares it; docs/developing.md
    // runs the suite beside two busy processes) a system test that takes 8 s alone takes 30 s or more.
    // Tests wait for conditions (readiness, a row, a log line) with deadlines of their own, below
    // these, so that a failure names what it waited for; a test whose waits add up to more sets its own.
    testTimeout: 120_000,
    hookTimeout: 240_000,
    // Two cores: files run in two forks; heavy system tests serialize themselves where needed.
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    // Verbose: every test name is printed, so the output shows each storage test ran on [pglite] and [postgres].
    reporters: ['verbose'],
  },
});
