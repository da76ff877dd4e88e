// Runs one of the offline verifiers (a module exporting `main(argv)`: audit/audit-verify-offline.ts,
// mrv/mrv-verify-offline.ts) on its own, for a third party: it never loads the database driver.
// The TypeScript source through tsx when it is installed, else the compiled output in dist/.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** `source` is the module's path without extension, e.g. `audit/audit-verify-offline`. */
export async function runOfflineVerifier(name, source) {
  let entry;
  try {
    require.resolve('tsx');
    const { register } = await import('tsx/esm/api');
    register();
    entry = join(root, `${source}.ts`);
  } catch {
    entry = join(root, 'dist', `${source}.js`);
    if (!existsSync(entry)) {
      process.stderr.write(`${name}: neither tsx nor a build in dist/ is present\n`);
      process.exit(1);
    }
  }
  const { main } = await import(pathToFileURL(entry).href);
  try {
    process.exitCode = await main(process.argv);
  } catch (err) {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
