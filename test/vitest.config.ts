import { defineConfig } from 'vitest/config';
import * as path from 'node:path';

export default defineConfig({
  root: path.resolve(__dirname, '..'),
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
