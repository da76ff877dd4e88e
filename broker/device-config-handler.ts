import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  reportSchema,
  resultSchema,
  type CommandResult,
  type ConfigReport,
} from '../device-config/config-fns.ts';
import { parseDeviceJson, storableText } from './device-json.ts';
import type { DownstreamPublisher, UpstreamHandler } from './types.ts';

/**
 * Upstream half of remote configuration and commands (docs/device-contract.md, ADR 0013):
 * `devices/{id}/config/reported` and `devices/{id}/commands/result`. Read like telemetry
 * (broker/device-json.ts: UTF-8, unique names, bounded depth), then by a strict schema. Whatever
 * a device sends ends in one outcome: stored, or refused with a code and a reason on
 * `devices/{id}/errors`; either way acknowledged (nothing in it is worth sending again).
 */

/** Results and reports are small; a bigger one is refused, not stored. */
export const MAX_REPORT_BYTES = 8 * 1024;

type Outcome = { ok: true } | { ok: false; code: string; message: string };

export interface DeviceConfigHandlerDeps {
  publisher: DownstreamPublisher;
  logger: Logger;
  reports: {
    report(deviceId: string, report: ConfigReport, receivedAt: Date): Promise<Outcome>;
  };
  results: {
    result(deviceId: string, result: CommandResult, receivedAt: Date): Promise<Outcome>;
  };
}

/** Strings (keys too) made storable: PostgreSQL's jsonb holds neither U+0000 nor a lone surrogate. */
function storable(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return storableText(value, 1000);
  if (Array.isArray(value)) return value.map((v) => storable(v, depth + 1));
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [storableText(k, 64), storable(v, depth + 1)]),
    );
  return value;
}

function read<S extends z.ZodType>(
  payload: Buffer,
  schema: S,
  malformed: string,
  example: string,
): { ok: true; value: z.infer<S> } | { ok: false; code: string; message: string } {
  if (payload.length > MAX_REPORT_BYTES)
    return { ok: false, code: 'PAYLOAD_TOO_LARGE', message: `over ${MAX_REPORT_BYTES} bytes` };
  const json = parseDeviceJson(payload, 8);
  if (!json.ok) return json;
  const parsed = schema.safeParse(json.value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const issue = parsed.error.issues[0];
  return {
    ok: false,
    code: malformed,
    message: storableText(
      `${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}; expected ${example}`,
    ),
  };
}

export function createDeviceConfigHandlers(
  deps: DeviceConfigHandlerDeps,
): Record<'config/reported' | 'commands/result', UpstreamHandler> {
  const refuse = async (
    deviceId: string,
    topic: string,
    outcome: { code: string; message: string },
  ): Promise<void> => {
    deps.logger.warn(
      { deviceId, topic, code: outcome.code, reason: outcome.message },
      'device report refused',
    );
    await deps.publisher.publish(
      deviceId,
      'errors',
      JSON.stringify({
        topic,
        reasons: [{ field: '', code: outcome.code, message: storableText(outcome.message) }],
      }),
      { qos: 1 },
    );
  };

  return {
    'config/reported': async (session, message) => {
      const r = read(
        message.payload,
        reportSchema,
        'CONFIG_REPORT_MALFORMED',
        '{"version":3,"status":"applied","appliedAt":"…"} or {"version":3,"status":"rejected","reason":"…"}',
      );
      if (!r.ok) return refuse(session.deviceId, message.topic, r);
      const report =
        r.value.status === 'rejected'
          ? { ...r.value, reason: storableText(r.value.reason) }
          : r.value;
      const outcome = await deps.reports.report(session.deviceId, report, message.receivedAt);
      if (!outcome.ok) await refuse(session.deviceId, message.topic, outcome);
    },
    'commands/result': async (session, message) => {
      const r = read(
        message.payload,
        resultSchema,
        'COMMAND_RESULT_MALFORMED',
        '{"id":"<the command\'s id>","status":"ok"|"error","result":{…},"error":"…"}',
      );
      if (!r.ok) return refuse(session.deviceId, message.topic, r);
      const result: CommandResult = {
        ...r.value,
        ...(r.value.result ? { result: storable(r.value.result) as Record<string, unknown> } : {}),
        ...(r.value.error !== undefined ? { error: storableText(r.value.error) } : {}),
      };
      const outcome = await deps.results.result(session.deviceId, result, message.receivedAt);
      if (!outcome.ok) await refuse(session.deviceId, message.topic, outcome);
    },
  };
}
