import { createHash, hash } from 'node:crypto';

/**
 * A Merkle tree as in RFC 6962 §2.1 (Certificate Transparency), SHA-256:
 *   MTH({})      = SHA-256()
 *   MTH({d0})    = SHA-256(0x00 || d0)                        (leaf hash)
 *   MTH(D[n])    = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power of two < n
 * and its audit paths (§2.1.1), verified with the algorithm of RFC 9162 §2.1.3.2.
 *
 * Built streaming: leaves are added one by one and only a stack of perfect subtrees (≤ 64 hashes)
 * plus one hash per CHUNK leaves are held, so a month of readings needs constant memory. Aligned
 * chunks of a power-of-two size are nodes of the RFC 6962 tree, so the root is also the RFC tree
 * over the chunk roots, and a proof for one leaf needs only its chunk's leaves and the chunk roots.
 * No database import here: the offline verifier uses it.
 */

export const EMPTY_ROOT = createHash('sha256').digest();

// One-shot `crypto.hash` over a prefixed copy: a month's tree is ~90,000 hashes of < 200 bytes,
// where createHash's object and three calls per hash cost more than the hashing (1.6× slower,
// BENCHMARKS.md, MRV). The scratch buffers are read synchronously, so reusing them is safe.
const leafScratch = Buffer.alloc(512);
const nodeScratch = Buffer.alloc(65);
nodeScratch[0] = 0x01;

export function leafHash(leaf: Uint8Array): Buffer {
  if (leaf.length >= leafScratch.length)
    return createHash('sha256').update(Buffer.of(0x00)).update(leaf).digest();
  leafScratch[0] = 0x00;
  leafScratch.set(leaf, 1);
  return hash('sha256', leafScratch.subarray(0, leaf.length + 1), 'buffer');
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== 32 || right.length !== 32)
    return createHash('sha256').update(Buffer.of(0x01)).update(left).update(right).digest();
  nodeScratch.set(left, 1);
  nodeScratch.set(right, 33);
  return hash('sha256', nodeScratch, 'buffer');
}

/** The largest power of two strictly smaller than n (n ≥ 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH over already-hashed nodes: leaf hashes, or the roots of aligned power-of-two chunks. */
export function rootOfHashes(hashes: readonly Buffer[], from = 0, to = hashes.length): Buffer {
  const n = to - from;
  if (n === 0) return EMPTY_ROOT;
  if (n === 1) return hashes[from]!;
  const k = splitPoint(n);
  return nodeHash(rootOfHashes(hashes, from, from + k), rootOfHashes(hashes, from + k, to));
}

/** RFC 6962 §2.1.1 PATH(m, D[n]) over already-hashed nodes. */
export function auditPath(
  m: number,
  hashes: readonly Buffer[],
  from = 0,
  to = hashes.length,
): Buffer[] {
  const n = to - from;
  if (m < 0 || m >= n) throw new RangeError(`leaf ${m} is outside a tree of ${n}`);
  if (n === 1) return [];
  const k = splitPoint(n);
  return m < k
    ? [...auditPath(m, hashes, from, from + k), rootOfHashes(hashes, from + k, to)]
    : [...auditPath(m - k, hashes, from + k, to), rootOfHashes(hashes, from, from + k)];
}

/**
 * RFC 9162 §2.1.3.2: the root an inclusion path leads to from a leaf hash, or undefined when the
 * path cannot belong to a tree of that size (too long, too short, index out of range).
 */
export function rootFromPath(
  leafIndex: number,
  treeSize: number,
  leaf: Buffer,
  path: readonly Buffer[],
): Buffer | undefined {
  if (
    !Number.isSafeInteger(leafIndex) ||
    !Number.isSafeInteger(treeSize) ||
    leafIndex < 0 ||
    leafIndex >= treeSize
  )
    return undefined;
  // BigInt: tree sizes may pass 2^31, where JavaScript's shift operators wrap.
  let fn = BigInt(leafIndex);
  let sn = BigInt(treeSize - 1);
  let r = leaf;
  for (const p of path) {
    if (p.length !== 32) return undefined;
    if (sn === 0n) return undefined;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : undefined;
}

export function verifyInclusion(
  leafIndex: number,
  treeSize: number,
  leaf: Buffer,
  path: readonly Buffer[],
  root: Buffer,
): boolean {
  const r = rootFromPath(leafIndex, treeSize, leaf, path);
  return r !== undefined && r.equals(root);
}

/** Leaves per chunk: a power of two, so each chunk is a node of the RFC 6962 tree. */
export const CHUNK = 64;

/**
 * Adds leaves in order and keeps, per chunk, the chunk's root; the whole tree's root is then the
 * RFC 6962 root over those chunk roots (see the file comment).
 */
export class MerkleBuilder {
  readonly chunkSize: number;
  readonly chunkRoots: Buffer[] = [];
  private current: Buffer[] = [];
  private count = 0;

  /** `onChunk` sees each chunk's leaf hashes as it closes (the issuer stores them: docs/mrv.md). */
  constructor(
    chunkSize = CHUNK,
    private readonly onChunk?: (index: number, leafHashes: readonly Buffer[]) => void,
  ) {
    if (chunkSize < 1 || (chunkSize & (chunkSize - 1)) !== 0)
      throw new RangeError('the chunk size is a power of two');
    this.chunkSize = chunkSize;
  }

  addLeaf(leaf: Uint8Array): void {
    this.addLeafHash(leafHash(leaf));
  }

  addLeafHash(hash: Buffer): void {
    this.current.push(hash);
    this.count += 1;
    if (this.current.length === this.chunkSize) this.closeChunk();
  }

  get size(): number {
    return this.count;
  }

  private closeChunk(): void {
    this.onChunk?.(this.chunkRoots.length, this.current);
    this.chunkRoots.push(rootOfHashes(this.current));
    this.current = [];
  }

  /** The root and the chunk roots (the last chunk may be partial). No leaf may follow. */
  finish(): { root: Buffer; size: number; chunkRoots: Buffer[] } {
    if (this.current.length > 0) this.closeChunk();
    return { root: rootOfHashes(this.chunkRoots), size: this.count, chunkRoots: this.chunkRoots };
  }
}

/**
 * The audit path of leaf `index` from its chunk's leaf hashes and all chunk roots: the path inside
 * the chunk, then the path of the chunk among the chunk roots (RFC 6962 PATH splits the same way).
 */
export function pathFromChunks(
  index: number,
  chunkSize: number,
  chunkLeafHashes: readonly Buffer[],
  chunkRoots: readonly Buffer[],
): Buffer[] {
  const chunk = Math.floor(index / chunkSize);
  return [...auditPath(index % chunkSize, chunkLeafHashes), ...auditPath(chunk, chunkRoots)];
}

/** True when chunk roots reproduce the root (a chunk index a verifier can trust to locate a change). */
export function chunkRootsMatch(chunkRoots: readonly Buffer[], root: Buffer): boolean {
  return rootOfHashes(chunkRoots).equals(root);
}
