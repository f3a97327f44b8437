import { defineConfig } from 'vitest/config';

/**
 * Files that start child processes (the CLI, the service, the demo, the typed client's generator) or Chromium: each
 * such process takes a core for a second or more, so these files run one at a time, after the others, with nothing
 * beside them (two of them side by side timed out on a loaded 2-core machine).
 */
const PROCESSES = [
  'test/cli/**/*.test.ts',
  'test/demo/**/*.test.ts',
  'test/ui/a11y.test.ts',
  'test/ui/browser.test.ts',
  'test/ui/dark-scheme.test.ts',
  'test/unit/client-types.test.ts',
  'test/http/concurrent.test.ts',
  'test/http/gemini-vllm-usage.test.ts',
  'test/http/money-audit.test.ts',
  'test/http/no-handle.test.ts',
  'test/http/requests-by-class.test.ts',
  'test/http/requests-by-type.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // The JSON report gives .ci/run an exact pass/fail count.
    reporters: ['default', 'json'],
    outputFile: { json: 'test-output/vitest.json' },
    projects: [
      {
        extends: true,
        test: {
          name: 'in-process',
          include: ['test/**/*.test.ts'],
          exclude: PROCESSES,
          // Two files at a time; each worker imports the app's modules once for all its files (a fresh process per
          // file spent ~1 s of each file importing them again). Every test makes its own app and database.
          maxWorkers: 2,
          isolate: false,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'processes',
          include: PROCESSES,
          maxWorkers: 1,
          isolate: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
