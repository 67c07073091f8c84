import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    exclude: ['tests/faults/**', 'node_modules/**'],
    globalSetup: ['tests/global-setup.ts'],
    setupFiles: ['tests/setup.ts'],
    // Each file gets its own database (PGlite in memory, or a fresh PostgreSQL database).
    pool: 'forks',
    // Both cores even on a 2-core machine: much of the suite waits on databases and child processes.
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 90_000,
    env: { NODE_ENV: 'test' },
    // *.test-d.ts files are type tests: checked by tsc, their assertions and expect-errors included.
    typecheck: { enabled: true, tsconfig: 'tsconfig.json', include: ['tests/**/*.test-d.ts'] },
  },
});
