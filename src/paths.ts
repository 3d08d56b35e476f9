import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findProjectRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
  return dir;
}

/** The project's root folder, the same whether running from src/ (tests) or dist/ (npm start). */
export const projectRoot = findProjectRoot();

export function fromRoot(...segments: string[]): string {
  return path.join(projectRoot, ...segments);
}
