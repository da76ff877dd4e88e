import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  auditPath,
  EMPTY_ROOT,
  leafHash,
  MerkleBuilder,
  nodeHash,
  pathFromChunks,
  rootFromPath,
  rootOfHashes,
  verifyInclusion,
} from './merkle-fns.ts';

const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();

/** RFC 6962 §2.1 MTH written out independently, straight from the definition over raw leaves. */
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha();
  if (leaves.length === 1) return sha(Buffer.of(0), leaves[0]!);
  let k = 1;
  while (k << 1 < leaves.length) k <<= 1;
  return sha(Buffer.of(1), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

const leavesArb = fc.array(
  fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  { minLength: 1, maxLength: 300 },
);
const chunkArb = fc.constantFrom(1, 2, 4, 8, 64);

describe('RFC 6962 Merkle tree', () => {
  it('hashes leaves and nodes with the 0x00 / 0x01 prefixes of RFC 6962 §2.1', () => {
    expect(leafHash(Buffer.from('a')).equals(sha(Buffer.of(0), Buffer.from('a')))).toBe(true);
    expect(
      nodeHash(Buffer.alloc(32, 1), Buffer.alloc(32, 2)).equals(
        sha(Buffer.of(1), Buffer.alloc(32, 1), Buffer.alloc(32, 2)),
      ),
    ).toBe(true);
    expect(new MerkleBuilder().finish().root.equals(EMPTY_ROOT)).toBe(true);
    // Certificate Transparency's reference vectors (its merkle_tree_test data): one empty leaf, then the 8 leaves.
    expect(rootOfHashes([leafHash(Buffer.alloc(0))]).toString('hex')).toBe(
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    );
    const ct = [
      '',
      '00',
      '10',
      '2021',
      '3031',
      '40414243',
      '5051525354555657',
      '606162636465666768696a6b6c6d6e6f',
    ].map((h) => leafHash(Buffer.from(h, 'hex')));
    expect(rootOfHashes(ct).toString('hex')).toBe(
      '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
    );
  });

  it('the streaming builder (any chunk size) gives the RFC root of the definition', () => {
    fc.assert(
      fc.property(leavesArb, chunkArb, (leaves, chunk) => {
        const b = new MerkleBuilder(chunk);
        for (const l of leaves) b.addLeaf(l);
        const { root, size } = b.finish();
        expect(size).toBe(leaves.length);
        expect(root.toString('hex')).toBe(mth(leaves).toString('hex'));
      }),
    );
  });

  it("every leaf's audit path verifies, also when built from its chunk and the chunk roots", () => {
    fc.assert(
      fc.property(leavesArb, chunkArb, (leaves, chunk) => {
        const hashes = leaves.map(leafHash);
        const b = new MerkleBuilder(chunk);
        for (const h of hashes) b.addLeafHash(h);
        const { root, chunkRoots } = b.finish();
        for (let i = 0; i < leaves.length; i += 1) {
          const path = auditPath(i, hashes);
          const c = Math.floor(i / chunk);
          expect(
            pathFromChunks(i, chunk, hashes.slice(c * chunk, (c + 1) * chunk), chunkRoots).map(
              (p) => p.toString('hex'),
            ),
          ).toEqual(path.map((p) => p.toString('hex')));
          expect(verifyInclusion(i, leaves.length, hashes[i]!, path, root)).toBe(true);
        }
      }),
    );
  });

  it('an altered leaf, index or path element never verifies', () => {
    fc.assert(
      fc.property(
        leavesArb,
        fc.nat(),
        fc.nat(),
        // Not the tree size: it comes from the signed report, and RFC 9162 §2.1.3.2 takes it as given.
        fc.constantFrom('leaf', 'index', 'flip', 'drop', 'extra', 'swap'),
        (leaves, pick, bit, how) => {
          const hashes = leaves.map(leafHash);
          const root = rootOfHashes(hashes);
          const i = pick % leaves.length;
          const path = auditPath(i, hashes);
          let [index, leaf, forged] = [i, hashes[i]!, path.map((p) => Buffer.from(p))];
          if (how === 'leaf') leaf = leafHash(Buffer.concat([leaves[i]!, Buffer.of(bit & 0xff)]));
          if (how === 'index') index = (i + 1 + (bit % leaves.length)) % (leaves.length + 1);
          if (how === 'flip') {
            fc.pre(forged.length > 0);
            const p = forged[bit % forged.length]!;
            p[bit % 32]! ^= 1 << (bit % 8);
          }
          if (how === 'drop') {
            fc.pre(forged.length > 0);
            forged = forged.slice(0, -1);
          }
          if (how === 'extra') forged = [...forged, Buffer.alloc(32, bit & 0xff)];
          if (how === 'swap') {
            fc.pre(forged.length > 1 && !forged[0]!.equals(forged[1]!));
            forged = [forged[1]!, forged[0]!, ...forged.slice(2)];
          }
          // A different index that happens to hold the same leaf hash is the same statement.
          fc.pre(
            !(
              how === 'index' &&
              index < leaves.length &&
              hashes[index]!.equals(leaf) &&
              auditPath(index, hashes).every((p, k) => p.equals(forged[k]!))
            ),
          );
          expect(verifyInclusion(index, leaves.length, leaf, forged, root)).toBe(false);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses paths of the wrong shape without throwing', () => {
    const h = leafHash(Buffer.from('x'));
    expect(rootFromPath(0, 1, h, [])?.equals(h)).toBe(true);
    expect(rootFromPath(1, 1, h, [])).toBeUndefined();
    expect(rootFromPath(-1, 4, h, [h, h])).toBeUndefined();
    expect(rootFromPath(0, 4, h, [h])).toBeUndefined();
    expect(rootFromPath(0, 2, h, [Buffer.alloc(31)])).toBeUndefined();
  });
});
