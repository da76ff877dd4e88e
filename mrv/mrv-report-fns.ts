import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../audit/audit-fns.ts';
import { keyIdOf } from '../audit/audit-signer.ts';
import { encodeReading, type RawReading } from './mrv-encoding.ts';
import { chunkRootsMatch, leafHash, rootFromPath } from './merkle-fns.ts';

/**
 * The signed report document and its offline checks (docs/mrv.md, "Verifying without us").
 * No database import: bin/thamani-mrv-verify.js runs this alone.
 *
 * Document: { format, report, signature: { algorithm, keyId, publicKey, value } }. The signature
 * is Ed25519 over "thamani-mrv-report/1\n" followed by the report in canonical JSON (keys sorted
 * by UTF-16 code units, no whitespace, numbers as ECMAScript prints them: RFC 8785, JCS).
 */

export const REPORT_FORMAT = 'thamani-mrv-report/1';
const DOMAIN = Buffer.from(`${REPORT_FORMAT}\n`);

export const DIGESTER_LEAF_ORDER = 'device_id bytes, then ts';
export const SITE_LEAF_ORDER = 'unit id bytes, then device_id bytes, then ts';

export interface MerkleSummary {
  algorithm: 'RFC6962-SHA256';
  encoding: 'thamani-reading/1';
  /** A digester report's order; a site report's puts its digesters one after another (docs/mrv.md). */
  leafOrder: typeof DIGESTER_LEAF_ORDER | typeof SITE_LEAF_ORDER;
  size: number;
  root: string;
  chunkSize: number;
  /** Roots of consecutive chunks of chunkSize leaves: nodes of the tree, so a change is located to a chunk. */
  chunkRoots: string[];
}

export interface ReportDocument {
  format: typeof REPORT_FORMAT;
  report: Record<string, unknown> & { id: string; merkle: MerkleSummary };
  signature: { algorithm: 'Ed25519'; keyId: string; publicKey: string; value: string };
}

export function reportSigningInput(report: unknown): Buffer {
  return Buffer.concat([DOMAIN, Buffer.from(canonicalJson(report), 'utf8')]);
}

export interface SignatureCheck {
  ok: boolean;
  keyId: string;
  /** The key was among those the verifier trusts (not only the one embedded in the document). */
  trustedKey: boolean;
  problems: string[];
}

/** Parses a report file's text; a clear error for anything that is not a report document. */
export function parseReportDocument(text: string): ReportDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  const d = doc as Partial<ReportDocument> | null;
  if (!d || typeof d !== 'object' || d.format !== REPORT_FORMAT)
    throw new Error(`not a ${REPORT_FORMAT} document`);
  if (
    !d.report ||
    typeof d.report !== 'object' ||
    !d.signature ||
    typeof d.signature.value !== 'string' ||
    typeof d.signature.publicKey !== 'string'
  )
    throw new Error('the document has no report or no signature');
  const m = d.report.merkle as Partial<MerkleSummary> | undefined;
  if (
    !m ||
    typeof m.root !== 'string' ||
    !Number.isSafeInteger(m.size) ||
    !Array.isArray(m.chunkRoots) ||
    !Number.isSafeInteger(m.chunkSize)
  )
    throw new Error('the report has no merkle summary');
  return d as ReportDocument;
}

/**
 * Checks the signature with a trusted key (given by the verifier) or, without one, with the key
 * embedded in the document, which then only proves integrity, not origin: the caller says so.
 * Also checks that the chunk roots reproduce the signed root.
 */
export function checkSignature(
  doc: ReportDocument,
  trusted?: Map<string, KeyObject>,
): SignatureCheck {
  const problems: string[] = [];
  let embedded: KeyObject;
  try {
    embedded = createPublicKey(doc.signature.publicKey);
  } catch {
    return {
      ok: false,
      keyId: doc.signature.keyId,
      trustedKey: false,
      problems: ['the embedded public key is not a PEM public key'],
    };
  }
  const embeddedId = keyIdOf(embedded);
  if (embeddedId !== doc.signature.keyId)
    problems.push(`keyId ${doc.signature.keyId} is not the embedded key's (${embeddedId})`);
  const key = trusted ? trusted.get(doc.signature.keyId) : embedded;
  if (!key) {
    problems.push(
      `signed by key ${doc.signature.keyId}, which is not among the trusted keys (${[...trusted!.keys()].join(', ')})`,
    );
  } else if (
    key.asymmetricKeyType !== 'ed25519' ||
    !verify(null, reportSigningInput(doc.report), key, Buffer.from(doc.signature.value, 'base64'))
  ) {
    problems.push(
      'the Ed25519 signature does not match the report: a field was changed after signing, or another key signed it',
    );
  }
  const m = doc.report.merkle;
  const roots = m.chunkRoots.map((h) => Buffer.from(h, 'hex'));
  if (
    roots.some((r) => r.length !== 32) ||
    !chunkRootsMatch(roots, Buffer.from(m.root, 'hex')) ||
    roots.length !== Math.ceil(m.size / m.chunkSize)
  )
    problems.push('the chunk roots do not reproduce the Merkle root');
  return {
    ok: problems.length === 0,
    keyId: doc.signature.keyId,
    trustedKey: Boolean(trusted && key),
    problems,
  };
}

/** An inclusion proof of one reading in a report (what `thamani mrv prove` writes). */
export interface InclusionProof {
  format: 'thamani-mrv-proof/1';
  reportId: string;
  root: string;
  treeSize: number;
  leafIndex: number;
  reading: {
    deviceId: string;
    unitId: string;
    ts: string;
    seq: string;
    values: Record<string, number>;
  };
  /** The canonical encoding (hex) the leaf hash is taken over. */
  leaf: string;
  /** RFC 6962 audit path, hex, from the leaf's sibling up. */
  path: string[];
}

/** Checks a proof against a (signature-checked) report: the reading's encoding, the path, the root. */
export function checkProof(
  doc: ReportDocument,
  proof: InclusionProof,
  decode: (p: InclusionProof['reading']) => RawReading,
): string[] {
  const problems: string[] = [];
  if (proof.reportId !== doc.report.id)
    problems.push(`the proof is for report ${proof.reportId}, not ${doc.report.id}`);
  if (proof.root !== doc.report.merkle.root || proof.treeSize !== doc.report.merkle.size)
    problems.push('the proof names another root or tree size than the signed report');
  let leaf: Buffer;
  try {
    leaf = encodeReading(decode(proof.reading));
  } catch (err) {
    return [...problems, `the reading cannot be encoded: ${(err as Error).message}`];
  }
  if (leaf.toString('hex') !== proof.leaf)
    problems.push('the leaf is not the canonical encoding of the reading shown');
  const path = proof.path.map((h) => Buffer.from(h, 'hex'));
  const root = rootFromPath(proof.leafIndex, doc.report.merkle.size, leafHash(leaf), path);
  if (!root || root.toString('hex') !== doc.report.merkle.root)
    problems.push(`the audit path from leaf ${proof.leafIndex} does not lead to the signed root`);
  return problems;
}
