import type { Logger } from 'pino';
import type { AuditEntry } from './audit-service.ts';
import {
  Aggregator,
  escapeDeviceText,
  escapeDeviceValue,
  type AggregateRecord,
  type SecurityEvent,
} from './security-events-fns.ts';

export type { SecurityEvent, AggregateRecord } from './security-events-fns.ts';

export interface SecurityEventsConfig {
  /** One record per (action, subject, reason) and window; the first of a quiet key at once. */
  windowMs: number;
  /** Keys held at once per class (known devices, others); beyond, events count into one overflow record per (action, reason). */
  maxKeys: number;
  maxSamples?: number;
  maxSampleChars?: number;
  /** Records waiting for the database (default 4 × maxKeys + 100: both classes of keys, twice); beyond, a record is dropped and counted. */
  queueMax?: number;
}

export interface SecurityEventCounters {
  /** Every refusal reported, by action, written or not: what the metric shows. */
  events: Record<string, number>;
  recordsWritten: number;
  /** Records dropped because the queue was full (the database slow or away), and their events. */
  recordsDropped: number;
  eventsDropped: number;
  /** Records whose write failed (logged with the error). */
  writeFailures: number;
  /** Events that found no key free and went to an overflow record. */
  overflowed: number;
}

/**
 * Security events from the device edge (and the HTTP API), into the audit store, in a way that no
 * flood of refusals can turn into a flood of writes, of memory, or of database connections:
 * - aggregated per (action, subject, reason) and window (security-events-fns.ts), with a count and
 *   a few samples, every event counted in `counters.events` whatever happens to its record;
 * - written one at a time from a bounded queue, so at most one connection is ever in use, and in
 *   production on a pool of its own (app/start.ts): the connections ingest and the API need are
 *   never taken by security events, and a stalled write drops records (counted), never stalls a
 *   CONNECT;
 * - every string escaped at this boundary (escapeDeviceText): a NUL or a lone surrogate in a topic
 *   or client id is recorded, not lost with the insert that PostgreSQL refuses.
 * `record` never throws and never waits: callers are the broker's hot paths.
 */
export function createSecurityEvents(deps: {
  audit: { record(entry: AuditEntry): Promise<unknown> };
  logger: Logger;
  config: SecurityEventsConfig;
  /** Names the device of a certificate of ours (`ourCertificate`: revoked, expired, wrong CONNECT), once per record. */
  deviceOfSerial?: (serial: string) => Promise<string | undefined>;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const { windowMs } = deps.config;
  // Room for a record from every key at once (a burst of new subjects), plus their window records.
  const queueMax = deps.config.queueMax ?? 4 * deps.config.maxKeys + 100;
  const aggregator = new Aggregator({
    windowMs,
    maxKeys: deps.config.maxKeys,
    maxSamples: deps.config.maxSamples ?? 8,
    maxSampleChars: deps.config.maxSampleChars ?? 256,
  });
  const counters: SecurityEventCounters = {
    events: {},
    recordsWritten: 0,
    recordsDropped: 0,
    eventsDropped: 0,
    writeFailures: 0,
    overflowed: 0,
  };
  const queue: AggregateRecord[] = [];
  let writing: Promise<void> | undefined;

  function enqueue(records: AggregateRecord[]): void {
    for (const r of records) {
      if (r.subject === 'overflow') counters.overflowed += r.count;
      if (queue.length >= queueMax) {
        counters.recordsDropped++;
        counters.eventsDropped += r.count;
        continue;
      }
      queue.push(r);
    }
    if (queue.length > 0 && !writing) {
      writing = drain().finally(() => {
        writing = undefined;
        if (queue.length > 0) enqueue([]);
      });
    }
  }

  async function drain(): Promise<void> {
    for (let r = queue.shift(); r; r = queue.shift()) {
      try {
        await deps.audit.record(await toEntry(r));
        counters.recordsWritten++;
        deps.logger.warn(
          {
            deviceId: r.deviceId,
            certSerial: r.certSerial,
            ip: r.ip,
            reason: r.reason,
            count: r.count,
            target: escapeDeviceText(r.samples[0]?.text ?? ''),
          },
          r.action,
        );
      } catch (err) {
        counters.writeFailures++;
        deps.logger.error(
          { err, action: r.action, reason: r.reason, count: r.count },
          'could not record security event',
        );
      }
    }
  }

  async function toEntry(r: AggregateRecord): Promise<AuditEntry> {
    let deviceId = r.deviceId;
    if (!deviceId && r.certSerial && r.ourCertificate && deps.deviceOfSerial)
      deviceId = await deps.deviceOfSerial(r.certSerial).catch(() => undefined);
    return {
      actorId: escapeDeviceText(deviceId ? `device:${deviceId}` : r.subject),
      actorRole: 'device',
      ip: r.ip ?? null,
      action: r.action,
      targetType: r.targetType,
      targetId: escapeDeviceText(r.samples[0]?.text ?? ''),
      after: escapeDeviceValue({
        ...r.details,
        reason: r.reason,
        count: r.count,
        samples: r.samples,
        firstAt: r.firstAt.toISOString(),
        lastAt: r.lastAt.toISOString(),
        windowSeconds: windowMs / 1000,
        subject: r.subject,
        certSerial: r.certSerial ?? null,
        certFingerprint: r.certFingerprint ?? null,
        ...(deviceId && !r.deviceId ? { deviceId } : {}),
      }),
    };
  }

  const timer = setInterval(() => enqueue(aggregator.due(now())), Math.min(windowMs, 1000));
  timer.unref();

  return {
    counters,
    record(event: SecurityEvent): void {
      counters.events[event.action] = (counters.events[event.action] ?? 0) + 1;
      deps.logger.debug(
        {
          deviceId: event.deviceId,
          certSerial: event.certSerial,
          ip: event.ip,
          reason: event.reason,
        },
        event.action,
      );
      const first = aggregator.add(event, now());
      if (first) enqueue([first]);
    },
    /** Keys held by the aggregator and records waiting (bounded: maxKeys, queueMax). */
    size: () => ({ keys: aggregator.size, queued: queue.length }),
    /** Writes every open window's record now and waits for the queue to empty. */
    async flush(): Promise<void> {
      enqueue(aggregator.due(now(), true));
      while (writing) await writing;
    },
    /** Flushes (bounded by `timeoutMs`: the database may be away) and stops the window timer. */
    async stop(timeoutMs = 5000): Promise<void> {
      clearInterval(timer);
      let timeout: NodeJS.Timeout | undefined;
      await Promise.race([
        this.flush(),
        new Promise<void>((resolve) => (timeout = setTimeout(resolve, timeoutMs))),
      ]);
      clearTimeout(timeout);
      if (queue.length > 0)
        deps.logger.warn({ records: queue.length }, 'security events not recorded before shutdown');
    },
  };
}

export type SecurityEvents = ReturnType<typeof createSecurityEvents>;
