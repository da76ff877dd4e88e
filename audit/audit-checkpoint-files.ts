import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SignedCheckpoint } from './audit-fns.ts';
import type { LoadedCheckpoint } from './audit-verify-fns.ts';

/**
 * Checkpoints as files: one JSON object per file, named so that `ls` lists them in chain order
 * (`checkpoint-<size, 12 digits>-<unix ms>.json`). The directory is meant to be copied off the
 * host (or to live on storage the database's administrators cannot write). No database import.
 */

export function checkpointFileName(cp: Pick<SignedCheckpoint, 'size' | 'at'>): string {
  return `checkpoint-${String(cp.size).padStart(12, '0')}-${Date.parse(cp.at)}.json`;
}

export async function writeCheckpointFile(dir: string, cp: SignedCheckpoint): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const file = path.join(dir, checkpointFileName(cp));
  const tmp = `${file}.tmp`;
  await writeFile(tmp, `${JSON.stringify(cp, null, 2)}\n`, { mode: 0o640 });
  await rename(tmp, file);
  return file;
}

/**
 * Every `*.json` file in `dir` (none when it does not exist). A file that is not a checkpoint
 * is returned as an empty object, so the verifier reports it rather than skipping it quietly.
 */
export async function readCheckpointFiles(dir: string): Promise<LoadedCheckpoint[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const out: LoadedCheckpoint[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    const text = await readFile(path.join(dir, name), 'utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = {};
    }
    out.push({
      source: name,
      checkpoint: (parsed && typeof parsed === 'object' ? parsed : {}) as SignedCheckpoint,
    });
  }
  return out;
}
