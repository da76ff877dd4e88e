import type pg from 'pg';
import { startRetentionByDays, type RetentionByDays } from '../db/retention-job.ts';
import { notificationRepo } from './notification-repo.ts';

/**
 * Sent and given-up notifications go after `NOTIFY_RETENTION_DAYS` (docs/security-model.md,
 * "Privacy"): at start, then daily. Every node may run it: a DELETE of what is already gone
 * removes nothing.
 */
export function startNotificationRetention(
  deps: RetentionByDays & { pool: Pick<pg.Pool, 'query'> },
): () => void {
  return startRetentionByDays({
    ...deps,
    name: 'notification retention',
    prune: async (cutoff) => {
      const removed = await notificationRepo.pruneEnded(deps.pool, cutoff);
      if (removed > 0)
        deps.logger.info(
          { removed, retentionDays: deps.retentionDays },
          'notifications past their retention removed',
        );
    },
  });
}
