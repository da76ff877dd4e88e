import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Logger } from 'pino';
import type { DbExecutor } from '../db/scoped.ts';
import { deviceRepo } from './device-repo.ts';

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
  | { type: 'sequence_reset'; deviceId: string }
  /** A new desired configuration version, or a new command (device-config/, ADR 0013): the gateway sends it. */
  | { type: 'config_changed'; deviceId: string }
  | { type: 'command_created'; deviceId: string; commandId: string };

export async function notifyDeviceEvent(tx: DbExecutor, event: DeviceEvent): Promise<void> {
  await deviceRepo.notify(tx, CHANNEL, JSON.stringify(event));
}

export interface DeviceEvents {
  on(
    event: 'certificate_revoked',
    listener: (e: { serial: string; deviceId: string }) => void,
  ): unknown;
  on(event: 'device_status', listener: (e: { deviceId: string; status: string }) => void): unknown;
  /**
   * LISTEN is back after the connection was lost: notifications sent meanwhile are gone for good
   * (PostgreSQL queues them only for connected listeners), so whoever acts on them re-checks.
   */
  on(event: 'resync', listener: () => void): unknown;
  on(event: 'sequence_reset', listener: (e: { deviceId: string }) => void): unknown;
  on(event: 'config_changed', listener: (e: { deviceId: string }) => void): unknown;
  on(
    event: 'command_created',
    listener: (e: { deviceId: string; commandId: string }) => void,
  ): unknown;
  /** Resolves once LISTEN is in place. */
  ready: Promise<void>;
  /** LISTEN is in place right now (readiness). */
  listening(): boolean;
  close(): Promise<void>;
}

/**
 * One dedicated connection LISTENs. When it is lost (the database restarts, a network cut), one
 * reconnect loop (never two) tries again with a growing delay, LISTENs again and emits 'resync'.
 */
export function createDeviceEvents(deps: {
  url: string;
  logger: Logger;
  maxDelayMs?: number;
}): DeviceEvents {
  const emitter = new EventEmitter();
  let client: pg.Client | undefined;
  let closed = false;
  let reconnecting = false;
  let timer: NodeJS.Timeout | undefined;
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));

  const connect = async (): Promise<pg.Client> => {
    const c = new pg.Client({
      connectionString: deps.url,
      application_name: 'thamani-events',
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
    });
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
    try {
      await c.connect();
      await deviceRepo.listen(c, CHANNEL);
    } catch (err) {
      // A failed attempt also ends with 'end': only the loop below may schedule the next one.
      await c.end().catch(() => undefined);
      throw err;
    }
    c.once('end', () => {
      if (client !== c) return;
      client = undefined;
      if (!closed) void reconnect('lost');
    });
    return c;
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    });

  async function reconnect(why: 'first' | 'lost'): Promise<void> {
    if (reconnecting) return;
    reconnecting = true;
    let delay = 250;
    if (why === 'lost') deps.logger.warn('device events: LISTEN connection lost; reconnecting');
    try {
      while (!closed) {
        try {
          const c = await connect();
          if (closed) {
            await c.end().catch(() => undefined);
            return;
          }
          client = c;
          break;
        } catch (err) {
          deps.logger.warn(
            { err, retryInMs: delay },
            why === 'first'
              ? 'device events: first connection failed; retrying'
              : 'device events: reconnect failed',
          );
          await sleep(delay);
          delay = Math.min(delay * 2, deps.maxDelayMs ?? 10_000);
        }
      }
    } finally {
      reconnecting = false;
    }
    if (!client) return;
    markReady();
    if (why === 'first') return;
    deps.logger.info('device events: listening again; re-checking live sessions');
    try {
      emitter.emit('resync');
    } catch (err) {
      deps.logger.error({ err }, 'a device events resync listener failed');
    }
  }
  void reconnect('first');

  return {
    on: (event: string, listener: (e: DeviceEvent) => void) => emitter.on(event, listener),
    ready,
    listening: () => client !== undefined,
    async close() {
      closed = true;
      clearTimeout(timer);
      await client?.end().catch(() => undefined);
    },
  } as DeviceEvents;
}
