import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/**
 * Test files run at once, each on its own database cloned from one template, all on one
 * PostgreSQL: the same table has the same OID in every clone. A statement over a cluster-wide
 * view (pg_locks, pg_stat_activity) that does not name its database sees, and with
 * pg_terminate_backend kills, the backends of other test files: that is how one file's "kill the
 * commit waiting on the lock" once killed another file's gateway connection. Every such
 * statement, in tests, fixtures, benches and the product, names its database.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLUSTER_WIDE = /\b(pg_locks|pg_stat_activity)\b/i;
const OWN_DATABASE = /current_database\(\)|\bdatname\s*=|\bdatabase\s*=/i;

/** The string literals (quoted or template) of `text` that read a cluster-wide view without naming a database. */
export function unscopedClusterQueries(text: string): string[] {
  const literals = text.match(/`(?:\\.|[^`\\])*`|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"/g) ?? [];
  return literals.filter((l) => CLUSTER_WIDE.test(l) && !OWN_DATABASE.test(l));
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || ['node_modules', 'dist', 'data'].includes(entry.name))
      continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(full));
    else if (entry.name.endsWith('.ts') || entry.name.endsWith('.sql')) out.push(full);
  }
  return out;
}

describe('statements over cluster-wide views name their database', () => {
  it('holds in every TypeScript and SQL file of the repository', () => {
    const self = fileURLToPath(import.meta.url);
    const found = tsFiles(root)
      .filter((f) => f !== self)
      .flatMap((f) =>
        unscopedClusterQueries(readFileSync(f, 'utf8')).map(
          (q) => `${path.relative(root, f)}: ${q.replace(/\s+/g, ' ').slice(0, 140)}`,
        ),
      );
    expect(found).toEqual([]);
  });

  it('flags such a statement however it is written, and only without its database', () => {
    const quote = fc.constantFrom('`', "'", '"');
    fc.assert(
      fc.property(
        quote,
        fc.constantFrom('pg_locks', 'PG_LOCKS', 'pg_stat_activity', 'pg_catalog.pg_locks'),
        fc.constantFrom(
          'count(*)',
          'count(pg_terminate_backend(pid))',
          'pid',
          'pg_terminate_backend(l.pid)',
        ),
        fc.constantFrom(
          "relation = 'readings'::regclass AND NOT granted",
          "application_name = 'x'",
          'wait_event_type = $1',
        ),
        fc.constantFrom(
          'datname = current_database()',
          'database = (SELECT oid FROM pg_database WHERE datname = current_database())',
          'datname = $1',
        ),
        (q, view, what, where, own) => {
          const bare = `const s = ${q}SELECT ${what} FROM ${view} WHERE ${where}${q};`;
          const scoped = `const s = ${q}SELECT ${what} FROM ${view} WHERE ${own} AND ${where}${q};`;
          expect(unscopedClusterQueries(bare)).toHaveLength(1);
          expect(unscopedClusterQueries(scoped)).toEqual([]);
          expect(unscopedClusterQueries(`${scoped}\n${bare}`)).toHaveLength(1);
        },
      ),
    );
  });
});
