import type { Db } from '../db/client.ts';
import { startRetentionByDays, type RetentionByDays } from '../db/retention-job.ts';
import { pruneSignInMetadata } from './personal-data-repo.ts';

/** Runs the retention at start and then daily (as the table owner, like the audit retention). */
export function startSignInMetadataRetention(deps: RetentionByDays & { db: Db }): () => void {
  return startRetentionByDays({
    ...deps,
    name: 'sign-in metadata retention',
    prune: async (cutoff, now) => {
      const removed = await pruneSignInMetadata(deps.db, cutoff, now);
      if (removed.requestMeta + removed.sessions > 0)
        deps.logger.info(
          { ...removed, retentionDays: deps.retentionDays },
          'sign-in metadata past its retention removed',
        );
    },
  });
}
