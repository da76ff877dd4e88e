import { z } from 'zod';
import type { NotificationChannel, OutgoingMessage, SendResult } from './channel-types.ts';

/**
 * SMS through Africa's Talking's messaging API, the provider most Kenyan operators use.
 *
 * Request (developers.africastalking.com, "SMS › Sending"; their Node SDK lib/sms.js does the
 * same): `POST {base}/version1/messaging`, body `application/x-www-form-urlencoded` with
 * `username`, `to` (E.164, comma-separated for several), `message`, and `from` (a registered
 * sender id or short code) only when configured; headers `apiKey` and `Accept: application/json`.
 * Production base https://api.africastalking.com, sandbox https://api.sandbox.africastalking.com
 * (username `sandbox`).
 *
 * Response: 201 Created with `{ SMSMessageData: { Message, Recipients: [{ statusCode, number,
 * status, cost, messageId }] } }`. Per recipient, statusCode 100 (Processed), 101 (Sent) and
 * 102 (Queued) are accepted; the others are refusals (401 RiskHold, 402 InvalidSenderId,
 * 403 InvalidPhoneNumber, 404 UnsupportedNumberType, 405 InsufficientBalance,
 * 406 UserInBlacklist, 407 CouldNotRoute, 409 DoNotDisturbRejection, 500 InternalServerError,
 * 501 GatewayError, 502 RejectedByGateway). A wrong apiKey is HTTP 401 with a text body.
 */

const recipientSchema = z.object({
  statusCode: z.coerce.number(),
  number: z.string(),
  status: z.string(),
  cost: z.string().optional(),
  messageId: z.string().optional(),
});
const responseSchema = z.object({
  SMSMessageData: z.object({
    Message: z.string().optional(),
    Recipients: z.array(recipientSchema),
  }),
});

const accepted = new Set([100, 101, 102]);
/** Refusals about the number itself: retrying the same message to it cannot succeed. */
const permanentCodes = new Set([402, 403, 404, 406, 409]);

/** What one recipient's status means for the outbox (pure, exported for tests). */
export function recipientOutcome(r: z.infer<typeof recipientSchema>): SendResult {
  if (accepted.has(r.statusCode)) return { ok: true, providerId: r.messageId ?? '' };
  return {
    ok: false,
    permanent: permanentCodes.has(r.statusCode),
    error: `Africa's Talking ${r.statusCode} ${r.status}`,
  };
}

export interface AfricasTalkingOptions {
  username: string;
  apiKey: string;
  /** Sender id or short code registered with Africa's Talking; the account default when absent. */
  from?: string | undefined;
  /** https://api.africastalking.com (production) or https://api.sandbox.africastalking.com. */
  baseUrl: string;
  timeoutMs?: number;
}

export function createAfricasTalkingSms(o: AfricasTalkingOptions): NotificationChannel {
  const url = `${o.baseUrl.replace(/\/+$/, '')}/version1/messaging`;
  return {
    async send(m: OutgoingMessage): Promise<SendResult> {
      const form = new URLSearchParams({ username: o.username, to: m.to, message: m.body });
      if (o.from) form.set('from', o.from);
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: {
            apiKey: o.apiKey,
            Accept: 'application/json',
            'Content-Type': 'application/x-www-form-urlencoded',
          },
          body: form.toString(),
          redirect: 'error',
          signal: AbortSignal.timeout(o.timeoutMs ?? 15_000),
        });
      } catch (err) {
        // Timeout or connection failure: the message may or may not have gone; the outbox
        // retries (at least once), as for any HTTP provider without an idempotency key.
        return {
          ok: false,
          permanent: false,
          error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        };
      }
      const text = await res.text();
      if (res.status !== 201 && res.status !== 200)
        // 401 (wrong key or username) and 5xx: a configuration or provider problem, not this
        // message's; retried with backoff so that fixing the key delivers what waited.
        return { ok: false, permanent: false, error: `HTTP ${res.status}: ${text.slice(0, 200)}` };
      let parsed: z.infer<typeof responseSchema>;
      try {
        parsed = responseSchema.parse(JSON.parse(text));
      } catch {
        return { ok: false, permanent: false, error: `unexpected response: ${text.slice(0, 200)}` };
      }
      const mine = parsed.SMSMessageData.Recipients.find((r) => r.number === m.to);
      if (!mine)
        return {
          ok: false,
          permanent: false,
          error: `no recipient status: ${parsed.SMSMessageData.Message ?? ''}`.slice(0, 200),
        };
      return recipientOutcome(mine);
    },
  };
}
