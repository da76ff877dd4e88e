import { createHmac } from 'node:crypto';
import type pg from 'pg';
import type { Logger } from 'pino';
import { withTransaction } from '../db/transaction.ts';
import { alertRepo } from './alert-repo.ts';

/**
 * Delivers alert notifications from the `alert_notifications` outbox to ALERT_WEBHOOK_URL: a JSON
 * POST signed with HMAC-SHA256 over `${timestamp}.${body}` (header X-Thamani-Signature:
 * `sha256=<hex>`, X-Thamani-Timestamp in seconds; receivers reject old timestamps against
 * replay). At least once: a delivery is marked only after a 2xx; failures back off
 * exponentially (capped at an hour) and give up after `maxAttempts`, leaving the error on the row.
 */

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

export function createWebhookDispatcher(deps: {
  pool: pg.Pool;
  logger: Logger;
  url: string;
  secret: string;
  timeoutMs?: number;
  maxAttempts?: number;
  pollMs?: number;
}) {
  const maxAttempts = deps.maxAttempts ?? 25;
  let running: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  async function deliverOne(row: {
    id: string;
    event: string;
    payload: unknown;
  }): Promise<string | undefined> {
    const body = JSON.stringify(row.payload);
    const timestamp = Math.floor(Date.now() / 1000);
    try {
      const res = await fetch(deps.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'thamani-iot-alerts/1',
          'x-thamani-event': `alert.${row.event}`,
          'x-thamani-delivery': row.id,
          'x-thamani-timestamp': String(timestamp),
          'x-thamani-signature': signWebhook(deps.secret, timestamp, body),
        },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(deps.timeoutMs ?? 5000),
      });
      await res.body?.cancel();
      return res.ok ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
    }
  }

  async function pass(): Promise<void> {
    await withTransaction(deps.pool, async (q) => {
      for (const row of await alertRepo.claimDeliveries(q, maxAttempts)) {
        const error = await deliverOne(row);
        if (!error) {
          await alertRepo.delivered(q, row.id);
        } else {
          const backoffS = Math.min(3600, 2 ** row.attempts);
          await alertRepo.deliveryFailed(q, row.id, error.slice(0, 500), backoffS);
          const level = row.attempts + 1 >= maxAttempts ? 'error' : 'warn';
          deps.logger[level](
            { delivery: row.id, error, attempts: row.attempts + 1 },
            level === 'error'
              ? 'alert webhook gave up on a delivery'
              : 'alert webhook delivery failed; will retry',
          );
        }
      }
    });
  }

  function kick(): void {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    running = pass()
      .catch((err: unknown) => deps.logger.warn({ err }, 'alert webhook pass failed'))
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          kick();
        }
      });
  }

  const timer = setInterval(kick, deps.pollMs ?? 5000);
  timer.unref();
  kick();
  return {
    /** A new delivery was written: send it now rather than at the next poll. */
    kick,
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
