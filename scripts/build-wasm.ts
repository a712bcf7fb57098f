/**
 * Compiles every hand-written kernel `src/core/wasm/<name>.wat` to `src/core/wasm/<name>.wasm.ts`
 * (the module's bytes as base64), so the runtime needs no WebAssembly toolchain. Run after editing
 * a .wat: `npm run build:wasm`; test/core/heap-simd.test.ts fails while a .wasm.ts is stale.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const WASM_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/core/wasm');

/** The module `file` (.wat) compiles to, with the features our kernels use. */
export async function compileWat(file: string): Promise<Uint8Array> {
  const wabt = await (await import('wabt')).default();
  const parsed = wabt.parseWat(path.basename(file), readFileSync(file, 'utf8'), { simd: true });
  try {
    parsed.validate();
    return parsed.toBinary({}).buffer;
  } finally {
    parsed.destroy();
  }
}

/** The TypeScript module that carries `bytes`. */
export function wasmModuleSource(wat: string, bytes: Uint8Array): string {
  return `// Generated from ${wat} by scripts/build-wasm.ts (npm run build:wasm); do not edit.\n`
    + `export const WASM_BASE64 = '${Buffer.from(bytes).toString('base64')}';\n`;
}

async function main() {
  for (const wat of readdirSync(WASM_DIR).filter((f) => f.endsWith('.wat'))) {
    const out = path.join(WASM_DIR, wat.replace(/\.wat$/, '.wasm.ts'));
    const bytes = await compileWat(path.join(WASM_DIR, wat));
    writeFileSync(out, wasmModuleSource(wat, bytes));
    process.stdout.write(`${path.relative(process.cwd(), out)}: ${bytes.length} bytes\n`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((e) => {
    process.stderr.write(`build-wasm: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}
