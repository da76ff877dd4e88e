export { createAuditLog, type AuditLog, type AuditEntry, type AuditActor } from './audit-service.ts';
export { canonicalJson, entryHash, GENESIS_HASH } from './audit-fns.ts';
export { verifyAuditChain, type VerifyResult } from './audit-verify.ts';
export { auditRoutes } from './audit-routes.ts';
export { listAudit, exportAudit, auditEntryJson } from './audit-query.ts';
export { createSecurityEvents, type SecurityEvents, type SecurityEvent, type SecurityEventsConfig, type SecurityEventCounters } from './security-events.ts';
export { escapeDeviceText, unescapeDeviceText } from './security-events-fns.ts';
