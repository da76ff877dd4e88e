#!/usr/bin/env node
// Runs the TypeScript sources through tsx when it is installed (a checkout), else the compiled
// output in dist/ (the production image, built by `npm run build`).
import { existsSync } from 'node:fs';
import process from 'node:process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

let entry;
try {
  require.resolve('tsx');
  const { register } = await import('tsx/esm/api');
  register();
  entry = join(root, 'cli', 'main.ts');
} catch {
  entry = join(root, 'dist', 'cli', 'main.js');
  if (!existsSync(entry)) {
    process.stderr.write('thamani: neither tsx nor a build in dist/ is present: run `npm install` (or `npm run build`)\n');
    process.exit(1);
  }
}
const { main } = await import(pathToFileURL(entry).href);
await main(process.argv);
