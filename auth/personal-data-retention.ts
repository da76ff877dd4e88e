import type { Logger } from 'pino';
import type { Db } from '../db/client.ts';
import { pruneSignInMetadata } from './personal-data-repo.ts';

/** Runs the retention at start and then daily (as the table owner, like the audit retention). */
export function startSignInMetadataRetention(deps: {
  db: Db;
  retentionDays: number;
  logger: Logger;
  now?: () => Date;
  intervalMs?: number;
}): () => void {
  const now = deps.now ?? (() => new Date());
  const run = async (): Promise<void> => {
    try {
      const t = now();
      const removed = await pruneSignInMetadata(
        deps.db,
        new Date(t.getTime() - deps.retentionDays * 86_400_000),
        t,
      );
      if (removed.requestMeta + removed.sessions > 0)
        deps.logger.info(
          { ...removed, retentionDays: deps.retentionDays },
          'sign-in metadata past its retention removed',
        );
    } catch (err) {
      deps.logger.error({ err }, 'sign-in metadata retention failed; will retry');
    }
  };
  void run();
  const timer = setInterval(() => void run(), deps.intervalMs ?? 86_400_000);
  timer.unref();
  return () => clearInterval(timer);
}
