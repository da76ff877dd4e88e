import type { Logger } from 'pino';

/** One run of the server: started and accepting connections. */
export interface ServerRun {
  readonly pid: number | undefined;
  /** Resolves when this run's process is gone, for whatever reason. */
  readonly exited: Promise<number | null>;
  /** Stops this run (fast shutdown) and resolves once it is gone. */
  stop(): Promise<void>;
}

export interface RestartPolicy {
  /** Consecutive failed or short-lived runs before giving up (default 8). */
  maxAttempts?: number;
  /** Delay before the first restart, doubled per further attempt (default 1000 ms). */
  initialDelayMs?: number;
  /** Largest delay between two attempts (default 30 000 ms). */
  maxDelayMs?: number;
  /** A run that lived this long counts as healthy: the attempt count starts again (default 60 000 ms). */
  stableAfterMs?: number;
}

export type SupervisorEnd =
  { reason: 'stopped' } | { reason: 'gave_up'; attempts: number; lastError: string };

export interface Supervisor {
  /** The current run's pid (changes after a restart); undefined while the server is down. */
  pid(): number | undefined;
  /** Restarts made so far (successful ones). */
  restarts(): number;
  /** Resolves when supervision ends: stop() was called, or restarting gave up. */
  readonly ended: Promise<SupervisorEnd>;
  /** Stops the server and never restarts it again (also cancels a pending restart). */
  stop(): Promise<void>;
}

/**
 * Keeps a server process running: when a run exits on its own (crash, OOM killer, an operator's
 * kill), it is started again after a growing delay, at most `maxAttempts` times in a row; each
 * exit and each attempt is logged. stop() ends supervision first and the run second, so a
 * server stopped by us is never restarted.
 */
export function supervise(
  first: ServerRun,
  start: () => Promise<ServerRun>,
  o: { logger: Logger; policy?: RestartPolicy },
): Supervisor {
  const maxAttempts = o.policy?.maxAttempts ?? 8;
  const initialDelayMs = o.policy?.initialDelayMs ?? 1000;
  const maxDelayMs = o.policy?.maxDelayMs ?? 30_000;
  const stableAfterMs = o.policy?.stableAfterMs ?? 60_000;
  let current: ServerRun | undefined = first;
  let startedAt = Date.now();
  let attempts = 0;
  let restarts = 0;
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;
  let starting: Promise<unknown> = Promise.resolve();
  let end!: (e: SupervisorEnd) => void;
  const ended = new Promise<SupervisorEnd>((resolve) => (end = resolve));

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      wake = resolve;
      timer = setTimeout(resolve, ms);
    });

  const watch = (run: ServerRun): void => {
    void run.exited.then((code) => {
      if (stopping || current !== run) return;
      current = undefined;
      if (Date.now() - startedAt >= stableAfterMs) attempts = 0;
      o.logger.error(
        { code, pid: run.pid },
        'embedded PostgreSQL exited unexpectedly: restarting it',
      );
      void restart(`exited with code ${code}`);
    });
  };

  async function restart(lastError: string): Promise<void> {
    while (!stopping) {
      if (attempts >= maxAttempts) {
        o.logger.fatal(
          { attempts, lastError },
          'embedded PostgreSQL could not be restarted: giving up (the gateway stays up, not ready; restart it once the cause is fixed)',
        );
        end({ reason: 'gave_up', attempts, lastError });
        return;
      }
      const delayMs = Math.min(initialDelayMs * 2 ** attempts, maxDelayMs);
      attempts++;
      o.logger.warn({ attempt: attempts, maxAttempts, delayMs }, 'restarting embedded PostgreSQL');
      await sleep(delayMs);
      if (stopping) return;
      const attempt = start();
      starting = attempt.catch(() => undefined);
      try {
        const run = await attempt;
        if (stopping) {
          await run.stop();
          return;
        }
        current = run;
        startedAt = Date.now();
        restarts++;
        o.logger.warn(
          { pid: run.pid, attempt: attempts, restarts },
          'embedded PostgreSQL restarted',
        );
        watch(run);
        return;
      } catch (err) {
        lastError = err instanceof Error ? err.message : String(err);
        o.logger.error({ err, attempt: attempts }, 'embedded PostgreSQL restart failed');
      }
    }
  }

  watch(first);
  let stopped: Promise<void> | undefined;
  return {
    pid: () => current?.pid,
    restarts: () => restarts,
    ended,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        clearTimeout(timer);
        wake?.();
        await starting;
        await current?.stop();
        current = undefined;
        end({ reason: 'stopped' });
      })();
      return stopped;
    },
  };
}
