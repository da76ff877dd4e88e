export { createAuditLog, type AuditLog, type AuditEntry, type AuditActor } from './audit-service.ts';
export { canonicalJson, entryHash, GENESIS_HASH } from './audit-fns.ts';
