import type pg from 'pg';
import type { Logger } from '../app/logger.ts';

/**
 * The retention job: once a day, as the table owner, removes audit entries older than 7 years
 * (audit_log_apply_retention, migration 0004, which moves the chain anchor). Nothing younger
 * can go: the trigger refuses it whatever this code does.
 */
export function startAuditRetention(deps: { ownerPool: pg.Pool; logger: Logger; intervalMs?: number }): () => void {
  const run = async (): Promise<void> => {
    try {
      const { rows } = await deps.ownerPool.query<{ removed: number }>('SELECT audit_log_apply_retention() AS removed');
      const removed = Number(rows[0]?.removed ?? 0);
      if (removed > 0) deps.logger.info({ removed }, 'audit entries older than 7 years removed; chain anchor moved');
    } catch (err) {
      deps.logger.error({ err }, 'audit retention failed; will retry');
    }
  };
  void run();
  const timer = setInterval(() => void run(), deps.intervalMs ?? 86_400_000);
  timer.unref();
  return () => clearInterval(timer);
}
