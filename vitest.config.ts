import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Timing tests share two cores with the servers they start: keep files from competing with each other.
    fileParallelism: false,
    reporters: ['default'],
  },
});
