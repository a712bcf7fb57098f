#!/usr/bin/env node
// Runs one TypeScript file of this package (the npm scripts' benchmarks and tools) with the package's
// tsconfig (decorators), whatever the working directory is: `node bin/run-ts.js bench/ingest.ts --write`.
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';
register({ tsconfig: fileURLToPath(new URL('../tsconfig.json', import.meta.url)) });
const [file, ...rest] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node bin/run-ts.js FILE.ts [args…]\n');
  process.exit(2);
}
// The script sees its own (real) path and arguments, as under `tsx FILE.ts args…`.
const script = realpathSync(path.resolve(file));
process.argv = [process.argv[0], script, ...rest];
await import(pathToFileURL(script).href);
