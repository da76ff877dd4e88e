import { createHash } from 'node:crypto';

/** The hash chain starts from 32 zero bytes. */
export const GENESIS_HASH: Buffer = Buffer.alloc(32);

/** JSON with object keys sorted at every depth: one byte sequence for one value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value instanceof Date) return JSON.stringify(value.toISOString());
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export interface ChainedFields {
  at: Date;
  actorId: string;
  actorRole: string;
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  before: unknown;
  after: unknown;
}

export function entryHash(fields: ChainedFields, prevHash: Buffer): Buffer {
  const canonical = canonicalJson({
    at: fields.at.toISOString(),
    actorId: fields.actorId,
    actorRole: fields.actorRole,
    ip: fields.ip,
    userAgent: fields.userAgent,
    requestId: fields.requestId,
    action: fields.action,
    targetType: fields.targetType,
    targetId: fields.targetId,
    before: fields.before ?? null,
    after: fields.after ?? null,
    prevHash: prevHash.toString('hex'),
  });
  return createHash('sha256').update(canonical).digest();
}
