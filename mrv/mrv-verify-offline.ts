import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parsePublicKeys } from '../audit/audit-signer.ts';
import {
  compareReadings,
  compareSiteReadings,
  encodeReading,
  isoToMicros,
  microsToIso,
  parseCsvHeader,
  parseCsvRow,
  type RawReading,
} from './mrv-encoding.ts';
import { leafHash, MerkleBuilder } from './merkle-fns.ts';
import { openLeafHashes, type LeafHashes } from './leaf-hashes-file.ts';
import {
  checkProof,
  checkSignature,
  parseReportDocument,
  SITE_LEAF_ORDER,
  type InclusionProof,
  type ReportDocument,
  type SignatureCheck,
} from './mrv-report-fns.ts';

/**
 * `thamani mrv verify report.json [--public-key k.pub] [--readings r.csv] [--proof p.json]`, and
 * bin/thamani-mrv-verify.js: what a verification body runs without us and without a database.
 */

export interface ReadingsCheck {
  ok: boolean;
  leaves: number;
  root: string;
  problems: string[];
  /** The first chunk of leaves whose root differs from the signed one: the change is among them. */
  firstBadChunk?: { index: number; fromLeaf: number; toLeaf: number; first: string; last: string };
  /**
   * With the report's leaf hashes (`--leaf-hashes`): the exact readings of the file whose leaf
   * differs from the signed one (index, CSV line, device, time), the first MAX_NAMED of them.
   */
  differingLeaves?: { index: number; line: number; deviceId: string; ts: string }[];
}

const MAX_NAMED = 1000;

/** Recomputes the root from a CSV export (streamed, constant memory) and locates the first differing chunk. */
export async function checkReadingsCsv(
  doc: ReportDocument,
  file: string,
  leafHashesFile?: string,
): Promise<ReadingsCheck> {
  const m = doc.report.merkle;
  const signed: LeafHashes | undefined = leafHashesFile
    ? await openLeafHashes(leafHashesFile, m)
    : undefined;
  try {
    return await check(doc, file, signed);
  } finally {
    await signed?.close();
  }
}

async function check(
  doc: ReportDocument,
  file: string,
  signed: LeafHashes | undefined,
): Promise<ReadingsCheck> {
  const m = doc.report.merkle;
  const tree = new MerkleBuilder(m.chunkSize);
  const differing: NonNullable<ReadingsCheck['differingLeaves']> = [];
  const unverifiable: number[] = [];
  /** This chunk's leaves in the file: hash, line and reading (at most chunkSize). */
  let chunkLeaves: { hash: Buffer; line: number; r: RawReading }[] = [];
  /** Names each leaf of a differing chunk that differs from the signed hash at its position. */
  const nameLeaves = async (index: number) => {
    if (!signed || differing.length >= MAX_NAMED) return;
    const hashes = await signed.chunk(index);
    if (!hashes) {
      unverifiable.push(index);
      return;
    }
    chunkLeaves.forEach((l, i) => {
      if (differing.length < MAX_NAMED && !hashes[i]?.equals(l.hash))
        differing.push({
          index: index * m.chunkSize + i,
          line: l.line,
          deviceId: l.r.deviceId,
          ts: microsToIso(l.r.tsMicros),
        });
    });
  };
  const problems: string[] = [];
  const compare = m.leafOrder === SITE_LEAF_ORDER ? compareSiteReadings : compareReadings;
  let header: string[] | undefined;
  let previous: RawReading | undefined;
  let lineNo = 0;
  let firstBadChunk: ReadingsCheck['firstBadChunk'];
  let chunkFirst: RawReading | undefined;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  const closeChunk = async (last: RawReading) => {
    const index = tree.chunkRoots.length - 1;
    const bad = tree.chunkRoots[index]!.toString('hex') !== m.chunkRoots[index];
    if (bad) await nameLeaves(index);
    chunkLeaves = [];
    if (!firstBadChunk && bad) {
      firstBadChunk = {
        index,
        fromLeaf: index * m.chunkSize,
        toLeaf: index * m.chunkSize + ((tree.size - 1) % m.chunkSize),
        first: `${chunkFirst!.deviceId} ${microsToIso(chunkFirst!.tsMicros)}`,
        last: `${last.deviceId} ${microsToIso(last.tsMicros)}`,
      };
    }
  };
  for await (const line of lines) {
    lineNo += 1;
    if (line === '') continue;
    if (!header) {
      header = parseCsvHeader(line);
      continue;
    }
    const r = parseCsvRow(header, line, lineNo);
    if (previous && compare(previous, r) >= 0)
      problems.push(`line ${lineNo}: out of leaf order (${m.leafOrder}) or a duplicate`);
    if (tree.size % m.chunkSize === 0) chunkFirst = r;
    const chunksBefore = tree.chunkRoots.length;
    const hash = leafHash(encodeReading(r));
    chunkLeaves.push({ hash, line: lineNo, r });
    tree.addLeafHash(hash);
    if (tree.chunkRoots.length > chunksBefore) await closeChunk(r);
    previous = r;
  }
  const partial = tree.size % m.chunkSize !== 0;
  const { root, size } = tree.finish();
  if (partial && previous) await closeChunk(previous);
  // Leaves the signed tree has beyond the end of the file (readings removed at the end).
  if (signed && size < m.size && differing.length === 0 && !unverifiable.length)
    differing.push({ index: size, line: lineNo + 1, deviceId: '', ts: '' });
  if (size !== m.size)
    problems.push(`${size} readings in the file, the report was computed from ${m.size}`);
  const hex = root.toString('hex');
  if (hex !== m.root)
    problems.push(`the readings give root ${hex}, the report is signed over ${m.root}`);
  if (firstBadChunk)
    problems.push(
      `first differing chunk ${firstBadChunk.index}: leaves ${firstBadChunk.fromLeaf}–${firstBadChunk.toLeaf} (${firstBadChunk.first} … ${firstBadChunk.last})`,
    );
  if (signed) {
    problems.push(...signed.problems);
    if (unverifiable.length)
      problems.push(
        `the leaf hashes file does not reproduce the signed root of chunk(s) ${unverifiable.slice(0, 10).join(', ')}: those readings cannot be named`,
      );
    for (const d of differing.slice(0, 20))
      problems.push(
        d.deviceId
          ? `leaf ${d.index} differs from the signed one: line ${d.line}, device ${d.deviceId} at ${d.ts}`
          : `leaf ${d.index} and after are missing from the file`,
      );
    if (differing.length > 20) problems.push(`… ${differing.length - 20} more differing leaves`);
    if (size !== m.size && differing.length)
      problems.push(
        `the file has ${size - m.size > 0 ? 'more' : 'fewer'} readings than the report: the first differing leaf (${differing[0]!.index}) is where one was added or removed; leaves after it are shifted`,
      );
  }
  return {
    ok: problems.length === 0,
    leaves: size,
    root: hex,
    problems,
    ...(firstBadChunk ? { firstBadChunk } : {}),
    ...(signed ? { differingLeaves: differing } : {}),
  };
}

export function decodeProofReading(p: InclusionProof['reading']): RawReading {
  return {
    deviceId: p.deviceId,
    unitId: p.unitId,
    tsMicros: isoToMicros(p.ts),
    seq: BigInt(p.seq),
    values: p.values,
  };
}

export interface VerifyResult {
  reportId: string;
  signature: SignatureCheck;
  readings?: ReadingsCheck;
  proof?: { ok: boolean; leafIndex: number; problems: string[] };
}

export async function verifyReportFiles(opts: {
  report: string;
  publicKey?: string;
  readings?: string;
  leafHashes?: string;
  proof?: string;
}): Promise<VerifyResult> {
  const doc = parseReportDocument(await readFile(opts.report, 'utf8'));
  const trusted = opts.publicKey
    ? parsePublicKeys(await readFile(opts.publicKey, 'utf8'))
    : undefined;
  const result: VerifyResult = { reportId: doc.report.id, signature: checkSignature(doc, trusted) };
  if (opts.leafHashes && !opts.readings) throw new Error('--leaf-hashes needs --readings');
  if (opts.readings) result.readings = await checkReadingsCsv(doc, opts.readings, opts.leafHashes);
  if (opts.proof) {
    const proof = JSON.parse(await readFile(opts.proof, 'utf8')) as InclusionProof;
    const problems = checkProof(doc, proof, decodeProofReading);
    result.proof = { ok: problems.length === 0, leafIndex: proof.leafIndex, problems };
  }
  return result;
}

/** Text and exit status: 0 all checks passed, 2 a check failed (as `thamani audit verify`). */
export function describeVerify(r: VerifyResult): { text: string; exitCode: number } {
  const lines = [`report ${r.reportId}`];
  const s = r.signature;
  lines.push(
    s.ok
      ? `  signature: valid, key ${s.keyId}${s.trustedKey ? ' (trusted key)' : ' (embedded key only: compare it with the published key, /.well-known/thamani-mrv-key)'}`
      : `  signature: INVALID\n${s.problems.map((p) => `    ${p}`).join('\n')}`,
  );
  if (r.readings)
    lines.push(
      r.readings.ok
        ? `  readings: ${r.readings.leaves} readings reproduce the signed root ${r.readings.root}`
        : `  readings: MISMATCH\n${r.readings.problems.map((p) => `    ${p}`).join('\n')}`,
    );
  if (r.proof)
    lines.push(
      r.proof.ok
        ? `  proof: leaf ${r.proof.leafIndex} is included under the signed root`
        : `  proof: INVALID\n${r.proof.problems.map((p) => `    ${p}`).join('\n')}`,
    );
  const ok = s.ok && (r.readings?.ok ?? true) && (r.proof?.ok ?? true);
  return { text: `${lines.join('\n')}\n`, exitCode: ok ? 0 : 2 };
}

/** bin/thamani-mrv-verify.js: `report.json [--public-key f] [--readings f] [--proof f] [--json]`. */
export async function main(argv: string[]): Promise<number> {
  const args = argv.slice(2);
  const opts: Record<string, string | boolean> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i += 1) {
    const a = args[i]!;
    if (a === '--json') opts.json = true;
    else if (['--public-key', '--readings', '--leaf-hashes', '--proof'].includes(a)) {
      const v = args[(i += 1)];
      if (!v) throw new Error(`${a} needs a file`);
      opts[a.slice(2)] = v;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 1) {
    process.stderr.write(
      'usage: thamani-mrv-verify report.json [--public-key mrv-signing.pub] [--readings readings.csv [--leaf-hashes leaves.bin]] [--proof proof.json] [--json]\n',
    );
    return 64;
  }
  const result = await verifyReportFiles({
    report: positional[0]!,
    publicKey: opts['public-key'] as string | undefined,
    readings: opts.readings as string | undefined,
    leafHashes: opts['leaf-hashes'] as string | undefined,
    proof: opts.proof as string | undefined,
  });
  const { text, exitCode } = describeVerify(result);
  process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : text);
  return exitCode;
}
