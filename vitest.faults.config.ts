import { defineConfig } from 'vitest/config';

// The fault tests (npm run test:faults): real server processes killed, stopped and cut off from
// their database. Loopback only, each bounded in time; run by .ci/run on both databases.
export default defineConfig({
  test: {
    include: ['tests/faults/**/*.test.ts'],
    globalSetup: ['tests/global-setup.ts'],
    setupFiles: ['tests/setup.ts'],
    pool: 'forks',
    // One at a time: they measure timings and load the machine on purpose.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 90_000,
    env: { NODE_ENV: 'test' },
  },
});
