import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from '../app/logger.ts';
import type { DbExecutor } from '../db/scoped.ts';
import { sql } from 'drizzle-orm';

/**
 * Registry changes that live sessions must react to at once (revocation, suspension). They are
 * sent with pg_notify inside the transaction that makes the change, so they are delivered on
 * commit and reach every gateway process, including when a CLI in another process made them.
 */
export const CHANNEL = 'thamani_device_events';

export type DeviceEvent =
  | { type: 'certificate_revoked'; serial: string; deviceId: string }
  | { type: 'device_status'; deviceId: string; status: string }
  /** A technician says the device's seq counter restarted: ingest forgets its seq (docs/device-contract.md). */
  | { type: 'sequence_reset'; deviceId: string };

export async function notifyDeviceEvent(tx: DbExecutor, event: DeviceEvent): Promise<void> {
  await tx.execute(sql`SELECT pg_notify(${CHANNEL}, ${JSON.stringify(event)})`);
}

export interface DeviceEvents {
  on(event: 'certificate_revoked', listener: (e: { serial: string; deviceId: string }) => void): unknown;
  on(event: 'device_status', listener: (e: { deviceId: string; status: string }) => void): unknown;
  on(event: 'sequence_reset', listener: (e: { deviceId: string }) => void): unknown;
  /** Resolves once LISTEN is in place. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/** One dedicated connection LISTENs; it reconnects with backoff if the database goes away. */
export function createDeviceEvents(deps: { url: string; logger: Logger }): DeviceEvents {
  const emitter = new EventEmitter();
  let client: pg.Client | undefined;
  let closed = false;
  let delay = 250;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: deps.url, application_name: 'thamani-events' });
    c.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || !msg.payload) return;
      try {
        const event = JSON.parse(msg.payload) as DeviceEvent;
        emitter.emit(event.type, event);
      } catch (err) {
        deps.logger.error({ err }, 'malformed device event');
      }
    });
    c.on('error', (err) => deps.logger.warn({ err }, 'device event connection failed'));
    c.on('end', () => {
      if (!closed) scheduleReconnect();
    });
    await c.connect();
    await c.query(`LISTEN ${CHANNEL}`);
    client = c;
    delay = 250;
    markReady();
  };
  const scheduleReconnect = (): void => {
    client = undefined;
    setTimeout(() => {
      if (closed) return;
      connect().catch((err: unknown) => {
        deps.logger.warn({ err, retryInMs: delay }, 'device events: reconnect failed');
        delay = Math.min(delay * 2, 10_000);
        scheduleReconnect();
      });
    }, delay).unref();
  };
  connect().catch((err: unknown) => {
    deps.logger.warn({ err }, 'device events: first connection failed; retrying');
    scheduleReconnect();
  });

  return {
    on: (event: string, listener: (e: DeviceEvent) => void) => emitter.on(event, listener),
    ready,
    async close() {
      closed = true;
      await client?.end().catch(() => undefined);
    },
  } as DeviceEvents;
}
