import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { readCheckpointFiles } from './audit-checkpoint-files.ts';
import { parsePublicKeys } from './audit-signer.ts';
import {
  createChainVerifier,
  type VerifiableEntry,
  type VerifyResult,
} from './audit-verify-fns.ts';

/**
 * The third party's verifier: an export (`thamani audit export --out FILE`, NDJSON, oldest
 * first), the checkpoint files and the audit public key; no database, no server, no secret.
 * This module and what it imports must never reach `pg` or drizzle (audit-verify-offline.test.ts
 * walks its import graph), so that it can be handed to a verification body on its own:
 * `node bin/thamani-audit-verify.js --export FILE --checkpoints DIR --public-key FILE`.
 */

const hex = /^[0-9a-f]{64}$/;

/** One export line back into the fields the hashes were computed over. */
export function parseExportLine(line: string): VerifiableEntry | string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return 'not JSON';
  }
  const str = (k: string): string | null => (typeof o[k] === 'string' ? o[k] : null);
  const at = str('at');
  const prevHash = str('prevHash');
  const hash = str('hash');
  if (
    !Number.isSafeInteger(o.seq) ||
    !at ||
    Number.isNaN(Date.parse(at)) ||
    !prevHash ||
    !hex.test(prevHash) ||
    !hash ||
    !hex.test(hash)
  )
    return 'not an audit entry (seq, at, prevHash, hash)';
  if (
    typeof o.actorId !== 'string' ||
    typeof o.actorRole !== 'string' ||
    typeof o.action !== 'string' ||
    typeof o.targetType !== 'string'
  )
    return 'not an audit entry (actorId, actorRole, action, targetType)';
  const signature = str('signature');
  return {
    id: Number.isSafeInteger(o.id) ? (o.id as number) : null,
    seq: o.seq as number,
    at: new Date(at),
    actorId: o.actorId,
    actorRole: o.actorRole,
    ip: str('ip'),
    userAgent: str('userAgent'),
    requestId: str('requestId'),
    action: o.action,
    targetType: o.targetType,
    targetId: str('targetId'),
    before: o.before ?? null,
    after: o.after ?? null,
    prevHash: Buffer.from(prevHash, 'hex'),
    hash: Buffer.from(hash, 'hex'),
    keyId: str('keyId'),
    signature: signature === null ? null : Buffer.from(signature, 'base64'),
  };
}

export async function verifyAuditExport(opts: {
  exportFile: string;
  checkpointDir: string | undefined;
  publicKeyFile: string;
}): Promise<VerifyResult> {
  const publicKeys = parsePublicKeys(await readFile(opts.publicKeyFile, 'utf8'));
  const checkpoints = opts.checkpointDir ? await readCheckpointFiles(opts.checkpointDir) : [];
  const verifier = createChainVerifier({ publicKeys, checkpoints });
  const lines = createInterface({
    input: createReadStream(opts.exportFile, 'utf8'),
    crlfDelay: Infinity,
  });
  let lineNo = 0;
  try {
    for await (const line of lines) {
      lineNo += 1;
      if (line.trim() === '') continue;
      const entry = parseExportLine(line);
      if (typeof entry === 'string') {
        const result = verifier.finish();
        return {
          ...result,
          ok: false,
          firstBroken: result.firstBroken ?? {
            seq: (result.head?.seq ?? 0) + 1,
            id: null,
            reason: `line ${lineNo} of the export is ${entry}`,
          },
        };
      }
      if (verifier.push(entry)) break;
    }
  } finally {
    lines.close();
  }
  return verifier.finish();
}

/** Human summary; exit code 0 intact, 2 broken (like `thamani audit verify`). */
export function describeResult(result: VerifyResult): { text: string; exitCode: number } {
  const lines: string[] = [];
  if (result.firstBroken) {
    const b = result.firstBroken;
    lines.push(
      `audit chain BROKEN at position ${b.seq}${b.id !== null ? ` (entry id ${b.id})` : ''}: ${b.reason} (${result.checked} entries before it verified)`,
    );
  }
  for (const c of result.badCheckpoints ?? [])
    lines.push(`checkpoint ${c.source} REJECTED: ${c.reason}`);
  if (result.ok) {
    const head = result.head ? `; head #${result.head.seq} ${result.head.hash}` : '';
    const cps = result.checkpoints.latest
      ? `; ${result.checkpoints.checked} checkpoints matched, latest covers ${result.checkpoints.latest.size} entries (${result.checkpoints.latest.at})`
      : '; NO checkpoint: removal of the newest entries could not be detected';
    const legacy =
      result.legacy > 0
        ? `; ${result.legacy} unsigned entries from before the audit key, anchored by the first signature`
        : '';
    lines.push(`audit chain intact: ${result.checked} entries verified${head}${cps}${legacy}`);
  }
  return { text: `${lines.join('\n')}\n`, exitCode: result.ok ? 0 : 2 };
}

function argValue(argv: string[], name: string): string | undefined {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** `thamani-audit-verify --export FILE --public-key FILE [--checkpoints DIR] [--json]` */
export async function main(argv: string[]): Promise<number> {
  const args = argv.slice(2);
  const exportFile = argValue(args, '--export');
  const publicKeyFile = argValue(args, '--public-key');
  if (!exportFile || !publicKeyFile || args.includes('--help')) {
    process.stderr.write(
      'usage: thamani-audit-verify --export FILE --public-key FILE [--checkpoints DIR] [--json]\n',
    );
    return args.includes('--help') ? 0 : 64;
  }
  const result = await verifyAuditExport({
    exportFile,
    publicKeyFile,
    checkpointDir: argValue(args, '--checkpoints'),
  });
  const { text, exitCode } = describeResult(result);
  process.stdout.write(args.includes('--json') ? `${JSON.stringify(result)}\n` : text);
  return exitCode;
}
