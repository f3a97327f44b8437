#!/usr/bin/env -S node --max-semi-space-size=64
// Runs the TypeScript CLI without a build step: tsx's ESM hooks load src/ as it is.
// The package's own tsconfig, not one tsx would find in the caller's working directory.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';

register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/cli/main.ts');
