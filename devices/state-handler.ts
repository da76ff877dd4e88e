import { z } from 'zod';
import type pg from 'pg';
import { isStorableText, parseDeviceJson } from '../broker/device-json.ts';
import type { DownstreamPublisher, UpstreamHandler } from '../broker/types.ts';

/**
 * Text the database stores as sent: PostgreSQL text cannot hold U+0000 and jsonb (the audit log)
 * no lone surrogate (JSON's \ud800 escapes make them), so they are refused here, not by a failed
 * UPDATE half-way through a report.
 */
const storableString = (min: number, max: number) => z.string().min(min).max(max).refine(isStorableText, 'must not contain U+0000 or a lone surrogate');

/** `devices/{id}/state`: what the device says about itself (firmware version, uptime). */
const stateSchema = z.object({
  firmware: storableString(1, 64).optional(),
  uptimeS: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  /** Progress of a firmware rollout on this device (docs/device-contract.md, "Firmware updates"). */
  firmwareUpdate: z
    .object({ rolloutId: z.uuid(), status: z.enum(['downloading', 'verifying', 'installed', 'failed']), reason: storableString(0, 200).optional() })
    .optional(),
}).passthrough();

export type FirmwareReport = NonNullable<z.infer<typeof stateSchema>['firmwareUpdate']>;

/** A state message, or undefined when malformed. Total: invalid UTF-8, duplicate names and absurd nesting are malformed too (broker/device-json.ts). */
export function readState(payload: Buffer): z.infer<typeof stateSchema> | undefined {
  const json = parseDeviceJson(payload);
  if (!json.ok) return undefined;
  const result = stateSchema.safeParse(json.value);
  return result.success ? result.data : undefined;
}

export function createStateHandler(deps: { pool: pg.Pool; publisher: DownstreamPublisher; onFirmwareReport?: (deviceId: string, report: FirmwareReport) => Promise<void> }): UpstreamHandler {
  return async (session, message) => {
    const parsed = readState(message.payload);
    if (!parsed) {
      await deps.publisher.publish(session.deviceId, 'errors', JSON.stringify({ topic: message.topic, reasons: [{ field: '', code: 'STATE_MALFORMED', message: 'state must be a JSON object like {"firmware":"1.2.0","uptimeS":360} (firmwareUpdate: {rolloutId, status: downloading|verifying|installed|failed, reason})' }] }));
      return;
    }
    if (parsed.firmwareUpdate) await deps.onFirmwareReport?.(session.deviceId, parsed.firmwareUpdate);
    if (parsed.firmware) {
      await deps.pool.query(`UPDATE devices SET firmware_version = $2, last_seen_at = now() WHERE id = $1`, [session.deviceId, parsed.firmware]);
    }
  };
}
