import type { Logger } from 'pino';
import { startRetentionJob } from '../db/retention-job.ts';
import type { Db } from '../db/client.ts';
import { auditRepo } from './audit-repo.ts';
import type { AuditLog } from './audit-service.ts';
import { RETENTION_ACTION } from './audit-verify-fns.ts';

/**
 * The retention job: once a day, as the table owner, removes audit entries older than 7 years
 * (audit_log_apply_retention, migrations 0007 and 0015, which moves the chain anchor) and, in
 * the same transaction, appends a signed `audit.retention` entry naming the last removed
 * position and its hash. That entry is what lets a verifier accept a chain that no longer starts
 * at position 1; a deletion from the start by anyone without the audit key has none. Nothing
 * younger than 7 years can go: the trigger refuses it whatever this code does.
 */
export async function applyAuditRetention(deps: {
  ownerDb: Db;
  audit: Pick<AuditLog, 'record'>;
}): Promise<number> {
  return deps.ownerDb.transaction(async (tx) => {
    const removed = await auditRepo.applyRetention(tx);
    if (removed === 0) return 0;
    const anchor = await auditRepo.anchor(tx);
    await deps.audit.record(
      {
        actorId: 'system',
        actorRole: 'system',
        action: RETENTION_ACTION,
        targetType: 'audit_log',
        targetId: null,
        after: {
          removed,
          throughSeq: anchor!.throughSeq,
          throughHash: anchor!.lastHash.toString('hex'),
        },
      },
      tx,
    );
    return removed;
  });
}

export function startAuditRetention(deps: {
  ownerDb: Db;
  audit: Pick<AuditLog, 'record'>;
  logger: Logger;
  intervalMs?: number;
}): () => void {
  return startRetentionJob({
    name: 'audit retention',
    logger: deps.logger,
    intervalMs: deps.intervalMs,
    run: async () => {
      const removed = await applyAuditRetention(deps);
      if (removed > 0)
        deps.logger.info(
          { removed },
          'audit entries older than 7 years removed; chain anchor moved and attested',
        );
    },
  });
}
