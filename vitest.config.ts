import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Kernel tests are CPU-bound; two forks match the 2-core CI machine.
    pool: 'forks',
    maxWorkers: 2,
  },
});
