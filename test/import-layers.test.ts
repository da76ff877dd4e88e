import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cycles,
  importsOf,
  layerOf,
  loadImportGraph,
  rank,
  upward,
  type ImportEdge,
} from './import-graph.ts';

/**
 * The house's layers (docs/decisions/0006-import-layers.md): config < db < feature < http <
 * routes < app < cli. Imports run down or sideways; one that runs back up says why in a
 * `// layer:` comment; and no file reaches itself through its imports.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const graph = loadImportGraph(root);
const show = (e: ImportEdge): string =>
  `${e.from}:${e.line} (${layerOf(e.from)}) imports ${e.to} (${layerOf(e.to)})`;

describe('the import graph of the build', () => {
  it('reads every file tsconfig.build.json compiles, and no test file', () => {
    expect(graph.files.length).toBeGreaterThan(100);
    expect(
      graph.files.filter(
        (f) => f.endsWith('.test.ts') || f.startsWith('test/') || f.startsWith('bench/'),
      ),
    ).toEqual([]);
    expect(graph.edges.length).toBeGreaterThan(graph.files.length);
  });

  it('has no import cycle', () => {
    expect(cycles(graph.files, graph.edges)).toEqual([]);
  });

  it('runs back up a layer only where a // layer: comment says why', () => {
    expect(
      upward(graph.edges)
        .filter((e) => !e.reason)
        .map(show),
    ).toEqual([]);
  });

  it('places files by folder and role', () => {
    const expected: Record<string, string> = {
      'config/config.ts': 'config',
      'db/scoped.ts': 'db',
      'broker/broker-service.ts': 'feature',
      'devices/device-service.ts': 'feature',
      'api/scoped-services.ts': 'http',
      'devices/device-routes.ts': 'routes',
      'api/operator-api.ts': 'app',
      'app/start.ts': 'app',
      'broker/broker-commands.ts': 'cli',
      'cli/main.ts': 'cli',
    };
    for (const [file, layer] of Object.entries(expected)) {
      expect(graph.files).toContain(file);
      expect([file, layerOf(file)]).toEqual([file, layer]);
    }
  });
});

describe('the checker', () => {
  it('finds static imports, re-exports and import() calls, each with the // layer: reason on it or the line above', () => {
    const text = [
      "import type { A } from './a.ts';",
      '// layer: because the enum follows that list',
      "import { b } from '../b.ts';",
      "export { c } from './c.ts'; // layer: re-exported for the CLI's sake",
      "import pino from 'pino';",
      'import {',
      '  d,',
      "} from './d.ts';",
      "const e = await import('./e.ts');",
      '// layer:',
      "import './f.ts';",
    ].join('\n');
    expect(importsOf('x/y.ts', text)).toEqual([
      { specifier: './a.ts', line: 1, reason: undefined },
      { specifier: '../b.ts', line: 3, reason: 'because the enum follows that list' },
      { specifier: './c.ts', line: 4, reason: "re-exported for the CLI's sake" },
      { specifier: './d.ts', line: 8, reason: undefined },
      { specifier: './e.ts', line: 9, reason: undefined },
      // An empty reason is none.
      { specifier: './f.ts', line: 11, reason: undefined },
    ]);
  });

  it('flags an import from a lower layer to a higher one, and only that', () => {
    const files = [
      'config/config.ts',
      'db/client.ts',
      'broker/broker-service.ts',
      'api/app.ts',
      'ingest/ingest-routes.ts',
      'app/start.ts',
      'cli/main.ts',
    ];
    fc.assert(
      fc.property(fc.constantFrom(...files), fc.constantFrom(...files), (from, to) => {
        const edge = { from, to, line: 1, reason: undefined };
        expect(upward([edge])).toEqual(files.indexOf(from) < files.indexOf(to) ? [edge] : []);
        expect(rank(layerOf(from)) - rank(layerOf(to))).toBe(
          files.indexOf(from) - files.indexOf(to),
        );
      }),
    );
  });

  it('reports exactly the files that reach themselves through imports', () => {
    const graphs = fc.integer({ min: 1, max: 9 }).chain((n) =>
      fc.record({
        nodes: fc.constant(Array.from({ length: n }, (_, i) => `f${i}.ts`)),
        edges: fc.array(
          fc.record({
            from: fc.integer({ min: 0, max: n - 1 }),
            to: fc.integer({ min: 0, max: n - 1 }),
          }),
          { maxLength: 20 },
        ),
      }),
    );
    fc.assert(
      fc.property(graphs, ({ nodes, edges }) => {
        const named = edges.map((e) => ({ from: nodes[e.from]!, to: nodes[e.to]! }));
        // Reachability by brute force: a file is in a cycle iff it reaches itself.
        const reaches = (a: string, b: string): boolean => {
          const seen = new Set<string>();
          const todo = named.filter((e) => e.from === a).map((e) => e.to);
          while (todo.length > 0) {
            const x = todo.pop()!;
            if (x === b) return true;
            if (seen.has(x)) continue;
            seen.add(x);
            todo.push(...named.filter((e) => e.from === x).map((e) => e.to));
          }
          return false;
        };
        const found = cycles(nodes, named);
        expect(found.flat().sort()).toEqual(nodes.filter((n) => reaches(n, n)).sort());
        // Files in one component reach each other.
        for (const c of found)
          for (const a of c) for (const b of c) if (a !== b) expect(reaches(a, b)).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});
