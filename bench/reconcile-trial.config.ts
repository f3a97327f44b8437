import { defineConfig } from 'vitest/config';
// The long session's reconciliation, timed (npx vitest run -c bench/reconcile-trial.config.ts): see the file's header.
export default defineConfig({ test: { include: ['bench/long-session-reconcile.test.ts'], testTimeout: 3_600_000 } });
