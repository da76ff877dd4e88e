import { readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

/**
 * The import graph of the product's source (the files `tsconfig.build.json` compiles), read with
 * TypeScript's own parser, and the house's layers over it (docs/decisions/0006-import-layers.md).
 */

export interface ImportEdge {
  from: string;
  to: string;
  /** 1-based line of the module specifier. */
  line: number;
  /** `// layer: <why>` on the import or the line above it. */
  reason: string | undefined;
}

/** Lowest first. An import may go to its own layer or a lower one; upward needs a `// layer:` comment. */
export const layers = ['config', 'db', 'feature', 'http', 'routes', 'app', 'cli'] as const;
export type Layer = (typeof layers)[number];

/** The layer of a source file, by folder and file role (paths relative to the repository, with `/`). */
export function layerOf(file: string): Layer {
  const [top] = file.split('/');
  const base = path.posix.basename(file);
  if (top === 'cli' || base.endsWith('-commands.ts')) return 'cli';
  if (top === 'app' || file === 'api/operator-api.ts') return 'app';
  if (base.endsWith('-routes.ts')) return 'routes';
  if (top === 'api') return 'http';
  if (top === 'db') return 'db';
  if (top === 'config') return 'config';
  return 'feature';
}

export const rank = (l: Layer): number => layers.indexOf(l);

const LAYER_COMMENT = /\/\/\s*layer:\s*(\S.{2,})$/;

/** Relative imports of one file: static imports and re-exports, `import()` calls, with their `// layer:` reasons. */
export function importsOf(
  file: string,
  text: string,
): { specifier: string; line: number; reason: string | undefined }[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const lines = text.split('\n');
  const out: { specifier: string; line: number; reason: string | undefined }[] = [];
  const add = (statementStart: number, spec: ts.Expression): void => {
    if (!ts.isStringLiteralLike(spec) || !spec.text.startsWith('.')) return;
    const first = source.getLineAndCharacterOfPosition(statementStart).line;
    const last = source.getLineAndCharacterOfPosition(spec.getEnd()).line;
    let reason: string | undefined;
    for (let i = Math.max(0, first - 1); i <= last && !reason; i++)
      reason = LAYER_COMMENT.exec(lines[i] ?? '')?.[1]?.trim();
    out.push({ specifier: spec.text, line: last + 1, reason });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier)
      add(node.getStart(source), node.moduleSpecifier);
    else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0]
    )
      add(node.getStart(source), node.arguments[0]);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** Every relative import between the build's files (paths relative to `root`, with `/`). */
export function loadImportGraph(root: string): { files: string[]; edges: ImportEdge[] } {
  const config = ts.getParsedCommandLineOfConfigFile(
    path.join(root, 'tsconfig.build.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  if (!config) throw new Error('tsconfig.build.json could not be read');
  const rel = (abs: string): string => path.relative(root, abs).split(path.sep).join('/');
  const files = config.fileNames
    .filter((f) => !f.includes('node_modules'))
    .map(rel)
    .sort();
  const known = new Set(files);
  const edges: ImportEdge[] = [];
  for (const from of files) {
    for (const imp of importsOf(from, readFileSync(path.join(root, from), 'utf8'))) {
      const to = rel(path.resolve(root, path.posix.dirname(from), imp.specifier));
      if (!known.has(to))
        throw new Error(
          `${from}:${imp.line} imports ${imp.specifier}, which is not a file of the build`,
        );
      edges.push({ from, to, line: imp.line, reason: imp.reason });
    }
  }
  return { files, edges };
}

/** The strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function cycles(
  nodes: readonly string[],
  edges: readonly { from: string; to: string }[],
): string[][] {
  const out = new Map<string, string[]>();
  for (const e of edges) out.set(e.from, [...(out.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  // Iterative, so that a deep graph cannot overflow the call stack.
  for (const start of nodes) {
    if (index.has(start)) continue;
    const work: { node: string; i: number }[] = [{ node: start, i: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work.at(-1)!;
      const succ = out.get(top.node) ?? [];
      if (top.i < succ.length) {
        const w = succ[top.i++]!;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ node: w, i: 0 });
        } else if (onStack.has(w)) low.set(top.node, Math.min(low.get(top.node)!, index.get(w)!));
        continue;
      }
      work.pop();
      const parent = work.at(-1);
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(top.node)!));
      if (low.get(top.node) !== index.get(top.node)) continue;
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== top.node);
      if (component.length > 1 || succ.includes(top.node)) found.push(component.sort());
    }
  }
  return found;
}

/** Imports from a lower layer to a higher one. */
export function upward(edges: readonly ImportEdge[]): ImportEdge[] {
  return edges.filter((e) => rank(layerOf(e.from)) < rank(layerOf(e.to)));
}
