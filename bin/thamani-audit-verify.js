#!/usr/bin/env node
// The offline audit verifier on its own (audit/audit-verify-offline.ts): an export, the
// checkpoint files and the public key; it never loads the database driver. Runs the TypeScript
// source through tsx when it is installed, else the compiled output in dist/.
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
  entry = join(root, 'audit', 'audit-verify-offline.ts');
} catch {
  entry = join(root, 'dist', 'audit', 'audit-verify-offline.js');
  if (!existsSync(entry)) {
    process.stderr.write('thamani-audit-verify: neither tsx nor a build in dist/ is present\n');
    process.exit(1);
  }
}
const { main } = await import(pathToFileURL(entry).href);
try {
  process.exitCode = await main(process.argv);
} catch (err) {
  process.stderr.write(
    `thamani-audit-verify: ${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exitCode = 1;
}
