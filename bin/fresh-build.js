// Keeps a compiled copy of the TypeScript sources fresh for a checkout, so that `thamani` runs
// plain JavaScript instead of transpiling the tree through tsx at every call (seconds per call
// on a small machine). Only files whose source is newer than their output are transpiled, each
// on its own (typescript's transpileModule: no type check, that is `npm run typecheck`'s job),
// and every output is written to a temporary name and renamed, so that processes starting at
// once (the test suite starts many gateways) never read half a file.
import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
  readlinkSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';

/** Folders that hold no product code (or none `thamani` runs). */
const SKIP = new Set([
  'node_modules',
  'dist',
  'data',
  'coverage',
  'test-output',
  'test',
  'bench',
  'docs',
  'firmware-images',
]);
/**
 * Folders read at run time next to the code that reads them (`import.meta.url`): the migrations
 * and every feature's `public/` folder (its browser scripts and stylesheets), found, not listed,
 * so that a feature adding one is served from the compiled copy too.
 */
export function assetDirs(root) {
  const features = readdirSync(root, { withFileTypes: true }).filter(
    (e) =>
      e.isDirectory() &&
      !e.name.startsWith('.') &&
      !SKIP.has(e.name) &&
      existsSync(path.join(root, e.name, 'public')),
  );
  return ['db/migrations', ...features.map((e) => `${e.name}/public`)];
}

/** Where the compiled copy lives: npm's usual cache folder, emptied by every `npm ci`. */
export function cacheDir(root) {
  return path.join(root, 'node_modules', '.cache', 'thamani');
}

function* sources(root, dir = '') {
  for (const entry of readdirSync(path.join(root, dir), { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue;
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) {
      if (!SKIP.has(entry.name)) yield* sources(root, rel);
    } else if (
      dir &&
      entry.name.endsWith('.ts') &&
      !entry.name.endsWith('.test.ts') &&
      !entry.name.endsWith('.d.ts')
    ) {
      yield rel;
    }
  }
}

function mtime(file) {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return -1;
  }
}

function linkAsset(root, out, rel) {
  const link = path.join(out, rel);
  const target = path.join(root, rel);
  try {
    if (readlinkSync(link) === target) return;
  } catch {
    // missing: made below
  }
  mkdirSync(path.dirname(link), { recursive: true });
  const tmp = `${link}.${process.pid}.tmp`;
  symlinkSync(target, tmp);
  renameSync(tmp, link);
}

/**
 * Brings the compiled copy up to date and returns the path of `entry` (e.g. `cli/main.ts`) in it.
 * Returns undefined when the sources are not there (an installed build runs `dist/` instead).
 */
export function freshBuild(root, entry) {
  const out = cacheDir(root);
  const stale = [];
  for (const rel of sources(root)) {
    if (mtime(path.join(root, rel)) > mtime(path.join(out, rel.replace(/\.ts$/, '.js'))))
      stale.push(rel);
  }
  if (stale.length > 0) {
    // Loaded only when something changed: typescript takes longer to load than the rest of a call.
    const ts = createRequire(import.meta.url)('typescript');
    const compilerOptions = {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
      rewriteRelativeImportExtensions: true,
    };
    for (const rel of stale) {
      const source = ts.sys.readFile(path.join(root, rel));
      const { outputText } = ts.transpileModule(source, { compilerOptions, fileName: rel });
      const file = path.join(out, rel.replace(/\.ts$/, '.js'));
      mkdirSync(path.dirname(file), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, outputText);
      renameSync(tmp, file);
    }
  }
  for (const rel of assetDirs(root)) linkAsset(root, out, rel);
  return path.join(out, entry.replace(/\.ts$/, '.js'));
}
