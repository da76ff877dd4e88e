export { createAuditLog, type AuditLog, type AuditEntry } from './audit-service.ts';
export { canonicalJson, entryHash, GENESIS_HASH } from './audit-fns.ts';
