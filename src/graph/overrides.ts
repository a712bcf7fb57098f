/**
 * Hydra-like command-line overrides and `${ENV}` interpolation, applied to a parsed YAML
 * document before validation (so later errors still point at file lines).
 *
 * - `a.b=v`   sets an existing key, or one the schema knows (e.g. an option left at its default);
 *             anything else is refused with the nearest known key as a hint.
 * - `+a.b=v`  adds a key the schema does not know (validation may still refuse it).
 * - Values are YAML scalars (`3` → number, `true` → boolean, `[a, b]` → list), except where the
 *   schema says string, where the text is kept as is (`name=007` stays `'007'`).
 * - `${NAME}` / `${NAME:-default}` in any string scalar read the environment; a string that is
 *   exactly one `${…}` is retyped like a `--set` value (`batch: ${BATCH:-8}` is the number 8).
 *   An unset variable without default is an error naming the line. A default may itself be a
 *   placeholder, `${EVAL:-${TRAIN:-m.json}}` (innermost first, up to 4 levels).
 *
 * Ref: hydra command-line override grammar (STYLE.md §6, §11).
 */
import { isMap, isScalar, isSeq, parse as parseYamlValue, visit, type Document, type LineCounter } from 'yaml';
import { z } from 'zod';
import type { ConfigProblem } from './errors.ts';

// A default holds no `}` and no `${`, so only innermost placeholders match (nested defaults resolve inside out).
const ENV_PATTERN = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-((?:(?!\$\{)[^}])*))?\}/g;

export function interpolateEnv(doc: Document, env: Record<string, string | undefined>, lines: LineCounter, filled?: Map<string, string[]>): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  visit(doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return;
      const text = node.value;
      const whole = /^\$\{.+\}$/.test(text) && wholePlaceholder(text);
      // Innermost placeholders first, so a default can name another variable.
      let replaced = text;
      for (let level = 0; level < 4 && ENV_PATTERN.test(replaced); level++) replaced = replaced.replace(ENV_PATTERN, (_m, name: string, fallback: string | undefined) => {
        const value = env[name];
        if (value !== undefined && value !== '') {
          // Record which variable set which key (messages name the variable's origin).
          if (filled) { const key = keyPathOf(path, node); filled.set(key, [...(filled.get(key) ?? []), name]); }
          return value;
        }
        if (fallback !== undefined) return fallback;
        const at = node.range ? lines.linePos(node.range[0]) : undefined;
        problems.push({ key: keyPathOf(path, node), message: `environment variable '${name}' is not set and has no default (write \${${name}:-value})`, line: at?.line, column: at?.col });
        return '';
      });
      ENV_PATTERN.lastIndex = 0;
      node.value = whole ? parseYamlValue(replaced) ?? replaced : replaced;
    },
  });
  return problems;
}

/** True when `text` is one `${…}` placeholder from start to end (nested defaults included). */
function wholePlaceholder(text: string): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.startsWith('${', i)) { depth++; i++; } else if (text[i] === '}') { depth--; if (depth === 0 && i < text.length - 1) return false; }
  }
  return depth === 0;
}

function keyPathOf(path: readonly unknown[], node: unknown): string {
  const keys: string[] = [];
  for (let i = 0; i < path.length; i++) {
    const item = path[i] as { key?: { value?: unknown } };
    if (item && typeof item === 'object' && 'key' in item && item.key && isScalar(item.key)) keys.push(String(item.key.value));
    else if (isSeq(path[i]) && path[i + 1] !== undefined) keys.push(String((path[i] as { items: unknown[] }).items.indexOf(path[i + 1])));
  }
  void node;
  return keys.join('.');
}

export interface Override {
  text: string;
  path: string[];
  value: unknown;
  add: boolean;
}

/** `a.b=v` / `+a.b=v` → an Override; throws on a malformed one. */
export function parseOverride(text: string, typeAt: (path: string[]) => z.ZodType | undefined): Override {
  const match = /^(\+?)([^=\s][^=]*)=(.*)$/s.exec(text);
  if (!match) throw new Error(`override '${text}' is not key=value (e.g. nodes.batch.options.size=4)`);
  const [, plus, key, raw] = match;
  const path = key.split('.');
  const schema = typeAt(path);
  let value: unknown;
  if (schema && isStringSchema(schema)) value = raw;
  else {
    try { value = parseYamlValue(raw); } catch { value = raw; }
  }
  return { text, path, value, add: plus === '+' };
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema as z.ZodType & { unwrap?: () => z.ZodType; def: { innerType?: z.ZodType } };
  for (let i = 0; i < 8 && s; i++) {
    const inner = s.def?.innerType;
    if (!inner) break;
    s = inner as typeof s;
  }
  return s;
}
function isStringSchema(schema: z.ZodType): boolean {
  const s = unwrap(schema);
  return s instanceof z.ZodString || s instanceof z.ZodEnum;
}

/** The child schema of an object schema at one key (through default/optional wrappers). */
export function childSchema(schema: z.ZodType | undefined, key: string): z.ZodType | undefined {
  if (!schema) return undefined;
  const s = unwrap(schema);
  if (s instanceof z.ZodObject) return (s.shape as Record<string, z.ZodType>)[key];
  if (s instanceof z.ZodRecord) return s.def.valueType as z.ZodType;
  return undefined;
}

/** Applies overrides to the document; unknown keys are problems with a "did you mean" hint. */
export function applyOverrides(
  doc: Document,
  overrides: Override[],
  known: (path: string[]) => boolean,
  siblings: (path: string[]) => string[],
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const o of overrides) {
    const exists = doc.hasIn(o.path);
    if (!o.add && !exists && !known(o.path)) {
      const last = o.path[o.path.length - 1];
      const nearest = closest(last, siblings(o.path.slice(0, -1)));
      problems.push({
        key: o.path.join('.'),
        message: `--set ${o.text}: no such key${nearest ? `; did you mean '${[...o.path.slice(0, -1), nearest].join('.')}'?` : ''} (use +${o.path.join('.')}=… to add one)`,
      });
      continue;
    }
    const parent = o.path.slice(0, -1);
    if (parent.length && !doc.hasIn(parent)) doc.setIn(parent, doc.createNode({}));
    const container = parent.length ? doc.getIn(parent, true) : doc.contents;
    if (!isMap(container)) {
      problems.push({ key: o.path.join('.'), message: `--set ${o.text}: '${parent.join('.')}' is not a mapping` });
      continue;
    }
    doc.setIn(o.path, doc.createNode(o.value));
  }
  return problems;
}

/** Nearest candidate by edit distance (≤ 3 edits or a shared prefix), for hints. */
export function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) { best = c; bestDistance = d; }
  }
  return best !== undefined && (bestDistance <= 3 || best.startsWith(word.slice(0, 3))) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length];
}
