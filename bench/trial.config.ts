import { defineConfig } from 'vitest/config';
// The long-session trial only (npx vitest run -c bench/trial.config.ts): the README's 300 rounds, measured.
export default defineConfig({ test: { include: ['bench/long-session-trial.test.ts'], testTimeout: 3_600_000 } });
