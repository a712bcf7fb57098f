/**
 * Paths as they travel to other machines: each machine has its own checkout of the repository, so a
 * file inside it is named relative to the repository root (with `/`), and anything outside it by
 * its absolute path, which must then exist on every machine. Used for sweep jobs' graphs and for
 * remote stages' worker task modules.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `file` relative to the repository root when inside it, else absolute. */
export function portablePath(file: string): string {
  const absolute = path.resolve(file);
  const rel = path.relative(REPO_ROOT, absolute);
  return rel.startsWith('..') || path.isAbsolute(rel) ? absolute : rel.split(path.sep).join('/');
}

/** The local file a portable name stands for. */
export const localPath = (portable: string): string => path.resolve(REPO_ROOT, portable);

/** A module URL as it travels: a portable path, or a file URL when outside the repository. */
export function portableModule(module: string): string {
  const portable = portablePath(module.startsWith('file:') ? fileURLToPath(module) : module);
  return path.isAbsolute(portable) ? pathToFileURL(portable).href : portable;
}

/** The module URL to import for a portable module name. */
export const localModule = (portable: string): string => (portable.startsWith('file:') ? portable : pathToFileURL(localPath(portable)).href);
