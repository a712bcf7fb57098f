/** Writes one `## Heading` section of docs/benchmarks.md, replacing the section if it is there. */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCHMARKS_DOC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../docs/benchmarks.md');

/** `section` starts with `## ${heading}`; it replaces everything up to the next `## ` heading. */
export async function writeBenchmarkSection(heading: string, section: string, file = BENCHMARKS_DOC): Promise<void> {
  if (!section.startsWith(`## ${heading}\n`)) throw new Error(`benchmark section must start with '## ${heading}'`);
  const existing = await readFile(file, 'utf8').catch(() => '# Benchmarks\n');
  const escaped = heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const pattern = new RegExp(`## ${escaped}\\n[\\s\\S]*?(?=\\n## |$)`);
  const updated = pattern.test(existing) ? existing.replace(pattern, section.trimEnd() + '\n') : `${existing.trimEnd()}\n\n${section.trimEnd()}\n`;
  await writeFile(file, updated);
}
