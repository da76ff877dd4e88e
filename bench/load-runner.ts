import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LoadResult, LoadSpec } from './mqtt-load.ts';

const self = fileURLToPath(import.meta.url);
const here = path.dirname(self);
/** The load generator in the same form as this file: compiled (npm run bench) or TypeScript (tests). */
const loadScript = path.join(here, `mqtt-load${path.extname(self)}`);
const loaderArgs = self.endsWith('.ts') ? ['--import', 'tsx'] : [];

/** Runs the load generator in its own process so it does not share a core with the broker. */
export function runLoadInChild(spec: LoadSpec): Promise<LoadResult> {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'thamani-load-')), 'spec.json');
  writeFileSync(file, JSON.stringify(spec), { mode: 0o600 });
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...loaderArgs, loadScript, file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`load generator exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as LoadResult);
    });
  });
}
