import type { Logger } from 'pino';

/**
 * A retention job (audit entries, sign-in metadata, notifications): run at start, then every
 * `intervalMs` (daily). A run that fails is logged and the next one tries again. Returns stop.
 */
export function startRetentionJob(deps: {
  /** As logged: "<name> failed; will retry". */
  name: string;
  run: () => Promise<void>;
  logger: Logger;
  intervalMs?: number | undefined;
}): () => void {
  const once = async (): Promise<void> => {
    try {
      await deps.run();
    } catch (err) {
      deps.logger.error({ err }, `${deps.name} failed; will retry`);
    }
  };
  void once();
  const timer = setInterval(() => void once(), deps.intervalMs ?? 86_400_000);
  timer.unref();
  return () => clearInterval(timer);
}

/** What a retention by age takes from its caller (the job's own settings). */
export interface RetentionByDays {
  retentionDays: number;
  logger: Logger;
  now?: () => Date;
  intervalMs?: number | undefined;
}

/** A retention job that removes what is older than `retentionDays` before each run's `now`. */
export function startRetentionByDays(
  o: RetentionByDays & { name: string; prune: (cutoff: Date, now: Date) => Promise<void> },
): () => void {
  const clock = o.now ?? (() => new Date());
  return startRetentionJob({
    name: o.name,
    logger: o.logger,
    intervalMs: o.intervalMs,
    run: () => {
      const now = clock();
      return o.prune(new Date(now.getTime() - o.retentionDays * 86_400_000), now);
    },
  });
}
