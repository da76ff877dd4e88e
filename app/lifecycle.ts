import type { Logger } from 'pino';

/**
 * Owns shutdown order. Components register a stop function as they start; stop() runs them in
 * reverse order (last started, first stopped: MQTT listener before ingest flush before the pool
 * before the embedded database), each with a time limit, and never twice.
 */
export interface Lifecycle {
  onStop(name: string, stop: () => Promise<void> | void): void;
  stop(reason: string): Promise<void>;
  readonly stopping: boolean;
}

export function createLifecycle(logger: Logger, opts: { stepTimeoutMs?: number } = {}): Lifecycle {
  const steps: { name: string; stop: () => Promise<void> | void }[] = [];
  const stepTimeoutMs = opts.stepTimeoutMs ?? 15_000;
  let stopping: Promise<void> | undefined;
  return {
    onStop(name, stop) {
      steps.push({ name, stop });
    },
    get stopping() {
      return stopping !== undefined;
    },
    stop(reason) {
      stopping ??= (async () => {
        logger.info({ reason }, 'shutting down');
        for (const step of steps.toReversed()) {
          const started = performance.now();
          let timer: NodeJS.Timeout | undefined;
          try {
            await Promise.race([
              Promise.resolve(step.stop()),
              new Promise((_, reject) => {
                timer = setTimeout(
                  () => reject(new Error(`timed out after ${stepTimeoutMs} ms`)),
                  stepTimeoutMs,
                );
              }),
            ]);
            logger.debug(
              { step: step.name, durationMs: Math.round(performance.now() - started) },
              'stopped',
            );
          } catch (err) {
            logger.error({ err, step: step.name }, 'shutdown step failed');
          } finally {
            clearTimeout(timer);
          }
        }
        logger.info('stopped');
      })();
      return stopping;
    },
  };
}

/** SIGINT/SIGTERM stop everything in order and exit 0; a second signal exits at once. */
export function stopOnSignals(lifecycle: Lifecycle, logger: Logger): void {
  const handler = (signal: NodeJS.Signals): void => {
    if (lifecycle.stopping) {
      logger.warn({ signal }, 'second signal: exiting without finishing shutdown');
      process.exit(130);
    }
    void lifecycle.stop(signal).then(() => process.exit(0));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
