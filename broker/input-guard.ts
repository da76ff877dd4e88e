import type { Logger } from 'pino';
import { storableText } from './device-json.ts';
import type { DeviceSession, UpstreamPublish } from './types.ts';

/**
 * The one wrapper around everything a device can make the gateway do (docs/security-model.md,
 * "Totality"). Every publish ends in exactly one of: stored and acknowledged; quarantined with a
 * reason, acknowledged and explained on devices/{id}/errors; or not acknowledged with the
 * connection closed (a refusal, or a failure worth retrying: the device re-sends it). A handler
 * that fails in any other way (a bug: a TypeError, a RangeError from a date nobody expected, a
 * data error from the database) would otherwise cost a poison message that the device re-sends
 * for ever, or the process. Here it costs that one message: it is kept as an INTERNAL_REJECT
 * quarantine record with the error's class, logged with the device, counted
 * (thamani_device_input_internal_rejects_total) and acknowledged.
 */

/**
 * A publish deliberately left unacknowledged: a refusal (topic policy, rate) or a failure that a
 * re-send can cure (the database is away, the commit timed out). Aedes closes the connection
 * [MQTT-3.3.5-2: no negative PUBACK in 3.1.1]; the device keeps the message and sends it again.
 */
export class NotAcknowledged extends Error {
  override readonly name = 'NotAcknowledged';
}

/** SQLSTATE classes and socket errors that say "not now", not "never" (PostgreSQL Appendix A). */
const TRANSIENT_SQLSTATE = /^(08|53|57|58)|^40001$|^40P01$|^55P03$/;
const TRANSIENT_NODE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const TRANSIENT_POOL =
  /timeout exceeded when trying to connect|Connection terminated|not queryable|Cannot use a pool after calling end/i;

/**
 * Whether the PUBACK should be withheld (the device re-sends) rather than the message kept as
 * INTERNAL_REJECT. An unknown error is a bug; if it is in fact an outage, the INTERNAL_REJECT
 * record cannot be written either and the PUBACK is withheld all the same.
 */
export function isWithheld(err: unknown): boolean {
  if (err instanceof NotAcknowledged) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (TRANSIENT_SQLSTATE.test(code) || TRANSIENT_NODE.has(code)))
    return true;
  return err instanceof Error && TRANSIENT_POOL.test(err.message);
}

/** What kind of failure, for the record, the log and the metric label (bounded: class names). */
export function errorClass(err: unknown): string {
  if (err instanceof Error) return storableText(err.constructor?.name || err.name || 'Error', 60);
  return err === null ? 'null' : typeof err;
}

export const asError = (err: unknown): Error =>
  err instanceof Error ? err : new Error(`non-error thrown: ${storableText(String(err))}`);

/** Keeps one failed message as INTERNAL_REJECT (ingest: quarantine record, errors message); `done` once committed. */
export type InternalRejectRecorder = (
  session: DeviceSession,
  message: UpstreamPublish,
  errorClass: string,
  done: (err: Error | null) => void,
) => void;

/** `record` is asked per failure: the recorder (ingest) is given to the broker after the guard exists (BrokerRoutes). */
export function createInputGuard(deps: {
  logger: Logger;
  record: () => InternalRejectRecorder | undefined;
}) {
  const { logger } = deps;
  /** INTERNAL_REJECTs and hook failures by topic suffix (or hook) and error class. */
  const counts = new Map<string, { topic: string; error: string; n: number }>();
  const count = (topic: string, error: string): void => {
    const key = `${topic}\n${error}`;
    const c = counts.get(key);
    if (c) c.n++;
    else if (counts.size < 1000) counts.set(key, { topic, error, n: 1 });
  };

  return {
    counts,
    /**
     * The outcome of a publish whose handler failed: `settle(err)` withholds the PUBACK (and
     * Aedes closes the connection), `settle(null)` sends it. Settles exactly once.
     */
    failed(
      session: DeviceSession,
      message: UpstreamPublish,
      err: unknown,
      settle: (err: Error | null) => void,
    ): void {
      const log = {
        err,
        deviceId: session.deviceId,
        certSerial: session.certSerial,
        topic: message.topic,
      };
      if (isWithheld(err)) {
        logger.warn(log, 'publish not acknowledged: closing (the device sends it again)');
        return settle(asError(err));
      }
      const cls = errorClass(err);
      count(message.suffix, cls);
      logger.error(
        { ...log, errorClass: cls },
        'the gateway failed on a device message: kept as INTERNAL_REJECT',
      );
      const record = deps.record();
      if (!record) return settle(asError(err));
      let settled = false;
      const once = (e: Error | null): void => {
        if (settled) return;
        settled = true;
        settle(e);
      };
      try {
        record(session, message, cls, (recordErr) =>
          once(
            recordErr
              ? new NotAcknowledged('INTERNAL_REJECT record not committed', { cause: recordErr })
              : null,
          ),
        );
      } catch (recordErr) {
        logger.error(
          { err: recordErr, deviceId: session.deviceId },
          'could not record INTERNAL_REJECT',
        );
        once(asError(recordErr));
      }
    },
    /** A broker hook failed outside any publish: counted and logged (the caller decides the outcome). */
    hookFailed(hook: string, deviceId: string | undefined, err: unknown): void {
      const cls = errorClass(err);
      count(`hook:${hook}`, cls);
      logger.error(
        { err, deviceId, hook, errorClass: cls },
        'a broker hook failed on device input',
      );
    },
  };
}

export type InputGuard = ReturnType<typeof createInputGuard>;
