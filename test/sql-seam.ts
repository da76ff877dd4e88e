import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * The data-access rule of docs/decisions/0007-data-access.md, as a check over source text: SQL
 * (and drizzle's query builder) lives in db/ and in `<feature>-repo.ts` files only. Everything
 * else reaches the database through a repo, so a reviewer finds every query of a feature in one
 * file.
 *
 * What counts as SQL, found on the syntax tree rather than by grepping lines, so that comments
 * and prose do not count and a query split over a template literal still does:
 * - a string or template literal that reads as a SQL statement (upper-case keywords, the house
 *   style for SQL text: `SELECT … FROM`, `INSERT INTO`, `UPDATE x SET`, `DELETE FROM`, `COPY`,
 *   `SET LOCAL`, `LOCK TABLE`, `WITH x AS (`); a bare `'BEGIN'` is caught by the call it is
 *   passed to (a PEM armour line is not SQL);
 * - a tagged template `` sql`…` `` or a `sql.raw(…)` / `sql.join(…)` call;
 * - a `.query(…)` call (pg's and db/scoped.ts's `asQueryable`) or `.execute(…)` (drizzle);
 * - drizzle's relational reads (`db.query.<table>.findMany`);
 * - a value import of `drizzle-orm` (operators, `sql`) or of db/schema (the tables a builder
 *   query is made of). Type-only imports are fine: `typeof devices.$inferSelect` is a type.
 */

const statement =
  /(^|[^A-Za-z_])(SELECT\s[\s\S]*\bFROM\b|SELECT\s+(set_config|pg_|1\b|now\(\))|INSERT\s+INTO\s|UPDATE\s+[a-z_."]+\s+(AS\s+)?[a-z_]*\s*SET\s|DELETE\s+FROM\s|COPY\s+[a-z_"]+|WITH\s+[a-z_]+\s+AS\s*\(|SET\s+(LOCAL\s+)?[a-z_.]+\s*(=|TO)\s|LOCK\s+TABLE\s)/;

export interface Finding {
  file: string;
  line: number;
  what: string;
}

function isSchemaModule(spec: string): boolean {
  return (
    /(^|\/)db\/schema(\/|\/index\.ts$|\.ts$|$)/.test(spec) ||
    spec === 'drizzle-orm' ||
    spec.startsWith('drizzle-orm/')
  );
}

/** Every place in one source text where SQL is written or run. */
export function findSql(file: string, text: string): Finding[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const found: Finding[] = [];
  const at = (node: ts.Node, what: string) =>
    found.push({
      file,
      line: source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1,
      what,
    });

  const visit = (node: ts.Node): void => {
    if (
      ts.isImportDeclaration(node) &&
      ts.isStringLiteral(node.moduleSpecifier) &&
      isSchemaModule(node.moduleSpecifier.text)
    ) {
      const clause = node.importClause;
      const valueImport =
        clause !== undefined &&
        !clause.isTypeOnly &&
        (clause.name !== undefined ||
          (clause.namedBindings !== undefined &&
            (ts.isNamespaceImport(clause.namedBindings) ||
              clause.namedBindings.elements.some((e) => !e.isTypeOnly))));
      if (valueImport || clause === undefined) at(node, `imports ${node.moduleSpecifier.text}`);
      return;
    }
    if (
      ts.isStringLiteral(node) ||
      ts.isNoSubstitutionTemplateLiteral(node) ||
      ts.isTemplateHead(node) ||
      ts.isTemplateMiddle(node) ||
      ts.isTemplateTail(node)
    ) {
      if (statement.test(node.text))
        at(node, `SQL text ${JSON.stringify(node.text.trim().slice(0, 60))}`);
    }
    if (ts.isTaggedTemplateExpression(node) && ts.isIdentifier(node.tag) && node.tag.text === 'sql')
      at(node, 'sql`…`');
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const name = node.expression.name.text;
      const target = node.expression.expression;
      if (name === 'query' || name === 'execute') at(node, `.${name}(…)`);
      if ((name === 'raw' || name === 'join') && ts.isIdentifier(target) && target.text === 'sql')
        at(node, `sql.${name}(…)`);
      if (
        (name === 'findMany' || name === 'findFirst') &&
        ts.isPropertyAccessExpression(target) &&
        ts.isPropertyAccessExpression(target.expression) &&
        target.expression.name.text === 'query'
      )
        at(node, `.query.${target.name.text}.${name}(…)`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Files the rule applies to: TypeScript sources of the product, not db/, repos, tests (and test fixtures), benches. */
export function sourceFiles(root: string): string[] {
  const out: string[] = [];
  const skipDirs = new Set([
    'node_modules',
    'dist',
    'data',
    'db',
    'test',
    'bench',
    '.git',
    'coverage',
  ]);
  const walk = (dir: string, top: boolean): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (!(top && skipDirs.has(entry.name)) && entry.name !== 'node_modules') walk(full, false);
      } else if (
        entry.isFile() &&
        entry.name.endsWith('.ts') &&
        !/(\.d|\.test|-repo|^test-fixture)\.ts$/.test(entry.name)
      ) {
        out.push(path.relative(root, full).split(path.sep).join('/'));
      }
    }
  };
  walk(root, true);
  return out.sort();
}

export function scanTree(root: string): Finding[] {
  return sourceFiles(root).flatMap((file) =>
    findSql(file, readFileSync(path.join(root, file), 'utf8')),
  );
}
