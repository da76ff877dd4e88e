import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parsePublicKeys } from '../audit/audit-signer.ts';
import {
  compareReadings,
  encodeReading,
  isoToMicros,
  microsToIso,
  parseCsvHeader,
  parseCsvRow,
  type RawReading,
} from './mrv-encoding.ts';
import { MerkleBuilder } from './merkle-fns.ts';
import {
  checkProof,
  checkSignature,
  parseReportDocument,
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
}

/** Recomputes the root from a CSV export (streamed, constant memory) and locates the first differing chunk. */
export async function checkReadingsCsv(doc: ReportDocument, file: string): Promise<ReadingsCheck> {
  const m = doc.report.merkle;
  const tree = new MerkleBuilder(m.chunkSize);
  const problems: string[] = [];
  let header: string[] | undefined;
  let previous: RawReading | undefined;
  let lineNo = 0;
  let firstBadChunk: ReadingsCheck['firstBadChunk'];
  let chunkFirst: RawReading | undefined;
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  const closeChunk = (last: RawReading) => {
    const index = tree.chunkRoots.length - 1;
    if (!firstBadChunk && tree.chunkRoots[index]!.toString('hex') !== m.chunkRoots[index]) {
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
    if (previous && compareReadings(previous, r) >= 0)
      problems.push(
        `line ${lineNo}: out of leaf order (device id bytes, then time) or a duplicate`,
      );
    if (tree.size % m.chunkSize === 0) chunkFirst = r;
    const chunksBefore = tree.chunkRoots.length;
    tree.addLeaf(encodeReading(r));
    if (tree.chunkRoots.length > chunksBefore) closeChunk(r);
    previous = r;
  }
  const partial = tree.size % m.chunkSize !== 0;
  const { root, size } = tree.finish();
  if (partial && previous) closeChunk(previous);
  if (size !== m.size)
    problems.push(`${size} readings in the file, the report was computed from ${m.size}`);
  const hex = root.toString('hex');
  if (hex !== m.root)
    problems.push(`the readings give root ${hex}, the report is signed over ${m.root}`);
  if (firstBadChunk)
    problems.push(
      `first differing chunk ${firstBadChunk.index}: leaves ${firstBadChunk.fromLeaf}–${firstBadChunk.toLeaf} (${firstBadChunk.first} … ${firstBadChunk.last})`,
    );
  return {
    ok: problems.length === 0,
    leaves: size,
    root: hex,
    problems,
    ...(firstBadChunk ? { firstBadChunk } : {}),
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
  proof?: string;
}): Promise<VerifyResult> {
  const doc = parseReportDocument(await readFile(opts.report, 'utf8'));
  const trusted = opts.publicKey
    ? parsePublicKeys(await readFile(opts.publicKey, 'utf8'))
    : undefined;
  const result: VerifyResult = { reportId: doc.report.id, signature: checkSignature(doc, trusted) };
  if (opts.readings) result.readings = await checkReadingsCsv(doc, opts.readings);
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
    else if (['--public-key', '--readings', '--proof'].includes(a)) {
      const v = args[(i += 1)];
      if (!v) throw new Error(`${a} needs a file`);
      opts[a.slice(2)] = v;
    } else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length !== 1) {
    process.stderr.write(
      'usage: thamani-mrv-verify report.json [--public-key mrv-signing.pub] [--readings readings.csv] [--proof proof.json] [--json]\n',
    );
    return 64;
  }
  const result = await verifyReportFiles({
    report: positional[0]!,
    publicKey: opts['public-key'] as string | undefined,
    readings: opts.readings as string | undefined,
    proof: opts.proof as string | undefined,
  });
  const { text, exitCode } = describeVerify(result);
  process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : text);
  return exitCode;
}
