import { defineConfig } from 'vitest/config';

// Runs only this package's tests, without the repository's global setup.
export default defineConfig({
  test: {
    include: ['packages/ec2-emulator/test/**/*.test.ts'],
    testTimeout: 30_000,
  },
});
