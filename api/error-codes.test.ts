import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * One code, one meaning: an error code the API answers with (`{ code, message, requestId }`) is
 * defined once in the whole product, so a client can act on the code alone. Two catalogues that
 * both mean "unit not found" share one definition instead of defining the code twice (once with
 * another status). Read from the sources, so a new catalogue is covered without being listed.
 */
const root = path.resolve(import.meta.dirname, '..');
const skip = new Set(['node_modules', 'dist', 'data', 'coverage', 'test-output', '.git']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (e.isDirectory()) return skip.has(e.name) ? [] : sources(path.join(dir, e.name));
    return e.name.endsWith('.ts') && !e.name.endsWith('.test.ts') ? [path.join(dir, e.name)] : [];
  });
}

describe('error codes', () => {
  it('are each defined once across every catalogue', () => {
    const definitions = new Map<string, string[]>();
    for (const file of sources(root)) {
      for (const m of readFileSync(file, 'utf8').matchAll(/createError\(\s*'([A-Z0-9_]+)'/g)) {
        definitions.set(m[1]!, [...(definitions.get(m[1]!) ?? []), path.relative(root, file)]);
      }
    }
    expect(definitions.size).toBeGreaterThan(30); // the catalogues were found
    const twice = [...definitions].filter(([, files]) => files.length > 1);
    expect(twice, 'codes defined more than once').toEqual([]);
  });
});
