import { z } from 'zod';
import type pg from 'pg';
import { escapeDeviceText } from '../audit/index.ts';
import { parseDeviceJson } from '../broker/device-json.ts';
import type { DownstreamPublisher, UpstreamHandler } from '../broker/types.ts';
import { deviceRepo } from './device-repo.ts';

/** `devices/{id}/state`: what the device says about itself (firmware version, uptime). */
const stateSchema = z
  .object({
    firmware: z.string().min(1).max(64).optional(),
    uptimeS: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    /** Progress of a firmware rollout on this device (docs/device-contract.md, "Firmware updates"). */
    firmwareUpdate: z
      .object({
        rolloutId: z.uuid(),
        status: z.enum(['downloading', 'verifying', 'installed', 'failed']),
        reason: z.string().max(200).optional(),
      })
      .optional(),
  })
  .passthrough();

export type FirmwareReport = NonNullable<z.infer<typeof stateSchema>['firmwareUpdate']>;

/** A state message, or undefined when malformed. Total: invalid UTF-8, duplicate names and absurd nesting are malformed too (broker/device-json.ts). */
export function readState(payload: Buffer): z.infer<typeof stateSchema> | undefined {
  const json = parseDeviceJson(payload);
  if (!json.ok) return undefined;
  const result = stateSchema.safeParse(json.value);
  return result.success ? result.data : undefined;
}

export function createStateHandler(deps: {
  pool: pg.Pool;
  publisher: DownstreamPublisher;
  onFirmwareReport?: (deviceId: string, report: FirmwareReport) => Promise<void>;
}): UpstreamHandler {
  return async (session, message) => {
    const parsed = readState(message.payload);
    if (!parsed) {
      await deps.publisher.publish(
        session.deviceId,
        'errors',
        JSON.stringify({
          topic: message.topic,
          reasons: [
            {
              field: '',
              code: 'STATE_MALFORMED',
              message:
                'state must be a JSON object like {"firmware":"1.2.0","uptimeS":360} (firmwareUpdate: {rolloutId, status: downloading|verifying|installed|failed, reason})',
            },
          ],
        }),
      );
      return;
    }
    // The device's text is escaped where it is stored: a NUL would make PostgreSQL refuse the
    // write, the message would never be acknowledged, and the device would send it for ever.
    const update = parsed.firmwareUpdate;
    if (update)
      await deps.onFirmwareReport?.(
        session.deviceId,
        update.reason === undefined
          ? update
          : { ...update, reason: escapeDeviceText(update.reason) },
      );
    if (parsed.firmware) {
      await deviceRepo.setReportedFirmware(
        deps.pool,
        session.deviceId,
        escapeDeviceText(parsed.firmware),
      );
    }
  };
}
