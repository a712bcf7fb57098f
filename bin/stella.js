#!/usr/bin/env node
// Entry point: registers the TypeScript loader, then runs the CLI from source. The loader reads this
// package's tsconfig (decorators) whatever the working directory is.
import { fileURLToPath } from 'node:url';
import { register } from 'tsx/esm/api';
register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
await import('../src/cli/main.ts');
