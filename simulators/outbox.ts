import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * A device's on-disk outbox: a reading is written here before it is published and deleted only
 * when its PUBACK arrives. One file per reading, written to a temporary name and renamed into
 * place (rename is atomic on POSIX), so a crash leaves each reading either whole or absent, never
 * half-written; leftovers of an interrupted write are discarded on open. After an outage the
 * backlog is read back in seq order and uploaded in batches.
 */
export interface OutboxEntry {
  seq: number;
  ts: string;
  readings: Record<string, number | boolean>;
}

const name = (seq: number): string => `${String(seq).padStart(16, '0')}.json`;

export async function openOutbox(dir: string) {
  await mkdir(dir, { recursive: true });
  for (const f of await readdir(dir))
    if (f.endsWith('.tmp')) await rm(path.join(dir, f), { force: true });

  return {
    async add(entry: OutboxEntry): Promise<void> {
      const final = path.join(dir, name(entry.seq));
      const tmp = `${final}.tmp`;
      await writeFile(tmp, JSON.stringify(entry));
      await rename(tmp, final);
    },
    /** Everything not yet acknowledged, oldest first. */
    async pending(limit = Number.POSITIVE_INFINITY): Promise<OutboxEntry[]> {
      const files = (await readdir(dir))
        .filter((f) => f.endsWith('.json'))
        .sort()
        .slice(0, limit);
      const out: OutboxEntry[] = [];
      for (const f of files) {
        try {
          out.push(JSON.parse(await readFile(path.join(dir, f), 'utf8')) as OutboxEntry);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // acked meanwhile
        }
      }
      return out;
    },
    async ack(seqs: number[]): Promise<void> {
      await Promise.all(seqs.map((s) => rm(path.join(dir, name(s)), { force: true })));
    },
    async size(): Promise<number> {
      return (await readdir(dir)).filter((f) => f.endsWith('.json')).length;
    },
  };
}

export type Outbox = Awaited<ReturnType<typeof openOutbox>>;
