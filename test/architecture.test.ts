import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { findSql, scanTree, sourceFiles } from './sql-seam.ts';

/**
 * docs/decisions/0007-data-access.md: SQL lives in db/ and in `<feature>-repo.ts` files; routes,
 * services, CLI commands and the broker reach the database through a repo. Checked over the
 * source tree, so the rule stays true as the code changes.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('data access (ADR 0007)', () => {
  it('keeps SQL out of every source file but db/ and *-repo.ts', () => {
    // No exceptions: every file that held SQL has moved it into its feature's repo (issue 22).
    const offending = scanTree(root);
    expect(offending.map((f) => `${f.file}:${f.line} ${f.what}`)).toEqual([]);
  });

  it('applies to the product tree: not to db/, repos, tests, test fixtures or benches', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'thamani-seam-'));
    const files = [
      'db/client.ts',
      'db/schema/devices.ts',
      'bench/x.ts',
      'test/db.ts',
      'devices/device-repo.ts',
      'devices/device-service.ts',
      'devices/device.test.ts',
      'broker/test-fixture.ts',
      'cli/db/thing.ts',
      'app/start.ts',
    ];
    for (const f of files) {
      mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
      writeFileSync(path.join(dir, f), 'export const q = `SELECT id FROM devices`;\n');
    }
    expect(sourceFiles(dir)).toEqual([
      'app/start.ts',
      'cli/db/thing.ts',
      'devices/device-service.ts',
    ]);
    expect(scanTree(dir).map((f) => f.file)).toEqual([
      'app/start.ts',
      'cli/db/thing.ts',
      'devices/device-service.ts',
    ]);
  });
});

const ident = fc.stringMatching(/^[a-z][a-z_]{0,12}$/);
/** SQL statements of every kind the product writes, over generated tables and columns. */
const statement = fc.oneof(
  fc.tuple(ident, ident).map(([c, t]) => `SELECT ${c} FROM ${t} WHERE id = $1`),
  fc.tuple(ident, ident).map(([c, t]) => `SELECT count(*) AS n, ${c}\n   FROM ${t}`),
  fc.tuple(ident, ident).map(([t, c]) => `INSERT INTO ${t} (${c}) VALUES ($1)`),
  fc.tuple(ident, ident).map(([t, c]) => `UPDATE ${t} SET ${c} = $2 WHERE id = $1`),
  fc
    .tuple(ident, ident)
    .map(([t, c]) => `UPDATE ${t} a SET ${c} = now() FROM devices d WHERE a.device_id = d.id`),
  ident.map((t) => `DELETE FROM ${t} WHERE id = $1`),
  ident.map((t) => `COPY ${t} (a, b) FROM STDIN BINARY`),
  fc.tuple(ident, ident).map(([w, t]) => `WITH ${w} AS (SELECT 1 FROM ${t}) SELECT * FROM ${w}`),
  ident.map((s) => `SET LOCAL ${s}.x = 'y'`),
  ident.map((t) => `LOCK TABLE ${t} IN EXCLUSIVE MODE`),
  fc.constant(`SELECT set_config('thamani.role', $1, true)`),
);
/** The ways a source file can carry a statement or run one. */
const carriers: ((sql: string, name: string) => string)[] = [
  (sql) => `const text = ${JSON.stringify(sql)};`,
  (sql) => `const text = \`${sql.replaceAll('`', '')}\`;`,
  (sql, name) => `await pool.query(\`${sql.replace('$1', `\${${name}}`)}\`);`,
  (sql) => `const text = ['x', ${JSON.stringify(`  ${sql}`)}];`,
  (sql) => `await db.execute(sql\`${sql}\`);`,
  (_sql, name) => `export async function f(q: Q) { return q.query(${name}); }`,
  (_sql, name) => `const r = await client.query<{ id: string }>(${name}, []);`,
  (_sql, name) => `import { eq as ${name} } from 'drizzle-orm';`,
  (_sql, name) => `import { devices as ${name} } from '../db/schema/index.ts';`,
  (_sql, name) => `import * as ${name} from '../db/schema/index.ts';`,
  (_sql, name) => `const x = sql.raw(${name});`,
  (_sql, name) => `const rows = await db.query.${name}.findMany();`,
];

describe('the SQL detector', () => {
  it('finds SQL in every carrier, whatever the statement', () => {
    fc.assert(
      fc.property(
        statement,
        fc.integer({ min: 0, max: carriers.length - 1 }),
        ident,
        (sql, c, name) => {
          const text = `// a file\nexport const before = 1;\n${carriers[c]!(sql, `v_${name}`)}\n`;
          expect(findSql('x/y-service.ts', text).map((f) => f.line)).toContain(3);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('leaves prose, comments, PEM armour and type-only imports alone', () => {
    const words = fc
      .array(
        fc.constantFrom(
          'select',
          'the',
          'from',
          'update',
          'device',
          'set',
          'delete',
          'insert',
          'into',
          'a',
          'value',
          'with',
          'as',
        ),
        { minLength: 1, maxLength: 12 },
      )
      .map((w) => w.join(' '));
    fc.assert(
      fc.property(words, statement, (prose, sql) => {
        const text = [
          `// ${sql}`,
          `/** ${sql} */`,
          `const message = ${JSON.stringify(prose)};`,
          `const help = 'select a unit from the list';`,
          `const pem = pems.filter((p) => p.includes('BEGIN'));`,
          `import type { Device } from '../db/schema/index.ts';`,
          `import { type Site } from '../db/schema/index.ts';`,
          `const q = request.query;`,
          `hash.update(body);`,
        ].join('\n');
        expect(findSql('x/y-routes.ts', text)).toEqual([]);
      }),
      { numRuns: 200 },
    );
  });
});
