import type pg from 'pg';
import type { Logger } from 'pino';
import { notificationRepo } from './notification-repo.ts';

/**
 * Sent and given-up notifications go after `NOTIFY_RETENTION_DAYS` (docs/security-model.md,
 * "Privacy"): at start, then daily. Every node may run it: a DELETE of what is already gone
 * removes nothing.
 */
export function startNotificationRetention(deps: {
  pool: Pick<pg.Pool, 'query'>;
  retentionDays: number;
  logger: Logger;
  now?: () => Date;
  intervalMs?: number;
}): () => void {
  const now = deps.now ?? (() => new Date());
  const run = async (): Promise<void> => {
    try {
      const cutoff = new Date(now().getTime() - deps.retentionDays * 86_400_000);
      const removed = await notificationRepo.pruneEnded(deps.pool, cutoff);
      if (removed > 0)
        deps.logger.info(
          { removed, retentionDays: deps.retentionDays },
          'notifications past their retention removed',
        );
    } catch (err) {
      deps.logger.error({ err }, 'notification retention failed; will retry');
    }
  };
  void run();
  const timer = setInterval(() => void run(), deps.intervalMs ?? 86_400_000);
  timer.unref();
  return () => clearInterval(timer);
}
