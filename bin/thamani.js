#!/usr/bin/env node
// In a checkout (the TypeScript sources and typescript itself are there) runs a compiled copy
// kept fresh by bin/fresh-build.js; in the production image runs dist/, built by `npm run build`.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freshBuild } from './fresh-build.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

let entry = join(root, 'dist', 'cli', 'main.js');
if (
  existsSync(join(root, 'cli', 'main.ts')) &&
  existsSync(join(root, 'node_modules', 'typescript'))
) {
  entry = freshBuild(root, 'cli/main.ts');
} else if (!existsSync(entry)) {
  process.stderr.write(
    'thamani: neither the sources with their dev dependencies nor a build in dist/ is present: run `npm install` (or `npm run build`)\n',
  );
  process.exit(1);
}
const { main } = await import(pathToFileURL(entry).href);
await main(process.argv);
