import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Kernel tests are CPU-bound; two forks match the 2-core CI machine.
    pool: 'forks',
    maxWorkers: 2,
    // The JSON report lets CI print a plain "N passed, N failed" line (see .ci/run).
    reporters: ['default', 'json'],
    outputFile: { json: 'test/.tmp/vitest-results.json' },
  },
});
