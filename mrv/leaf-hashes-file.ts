import { open, type FileHandle } from 'node:fs/promises';
import { rootOfHashes } from './merkle-fns.ts';
import type { MerkleSummary } from './mrv-report-fns.ts';

/**
 * A report's leaf hashes (`thamani mrv export --leaf-hashes`: 32 bytes per leaf, leaf order), read
 * one chunk at a time. A chunk's hashes are believed only when their RFC 6962 root equals the
 * chunk root the report signs: whoever hands out the file (us, a changed database) cannot make
 * other hashes pass, so a mismatching reading is named to its leaf by comparing against them.
 */
export async function openLeafHashes(file: string, merkle: MerkleSummary) {
  const fh: FileHandle = await open(file, 'r');
  const size = (await fh.stat()).size;
  const problems: string[] = [];
  if (size !== merkle.size * 32)
    problems.push(
      `the leaf hashes file holds ${size} bytes, ${merkle.size * 32} expected (${merkle.size} leaves × 32)`,
    );
  return {
    problems,
    /** The signed chunk's leaf hashes, or undefined when the file's do not reproduce its signed root. */
    async chunk(index: number): Promise<Buffer[] | undefined> {
      const from = index * merkle.chunkSize;
      const count = Math.min(merkle.chunkSize, merkle.size - from);
      if (count <= 0) return undefined;
      const buf = Buffer.alloc(count * 32);
      const { bytesRead } = await fh.read(buf, 0, buf.length, from * 32);
      if (bytesRead !== buf.length) return undefined;
      const hashes = Array.from({ length: count }, (_, i) => buf.subarray(i * 32, i * 32 + 32));
      const expected = merkle.chunkRoots[index];
      return expected !== undefined && rootOfHashes(hashes).toString('hex') === expected
        ? hashes
        : undefined;
    },
    close: () => fh.close(),
  };
}

export type LeafHashes = Awaited<ReturnType<typeof openLeafHashes>>;
