export {
  createAuditLog,
  CHAIN_LOCK,
  type AuditLog,
  type AuditEntry,
  type AuditActor,
} from './audit-service.ts';
export {
  canonicalJson,
  entryHash,
  signedEntryHash,
  GENESIS_HASH,
  type SignedCheckpoint,
} from './audit-fns.ts';
export {
  ephemeralAuditSigner,
  loadOrCreateAuditSigner,
  parsePublicKeys,
  publicKeysOf,
  AUDIT_PUBLIC_KEY_FILE,
  type AuditSigner,
} from './audit-signer.ts';
export { openAuditSigner } from './audit-keys.ts';
export { verifyAuditChain, type VerifyResult } from './audit-verify.ts';
export {
  createAuditCheckpointer,
  startAuditCheckpoints,
  type AuditCheckpointer,
} from './audit-checkpoint.ts';
export { readCheckpointFiles } from './audit-checkpoint-files.ts';
export { listAudit, exportAudit, auditEntryJson } from './audit-query.ts';
export {
  createSecurityEvents,
  type SecurityEvents,
  type SecurityEvent,
  type SecurityEventsConfig,
  type SecurityEventCounters,
} from './security-events.ts';
export { escapeDeviceText, unescapeDeviceText } from './security-events-fns.ts';
