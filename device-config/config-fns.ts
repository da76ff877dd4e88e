import { z } from 'zod';
import {
  deviceKinds,
  metricCatalogue,
  metricsForKind,
  type DeviceKind,
  type MetricName,
} from '../devices/metrics.ts';

/**
 * Remote configuration, pure: the schema per device kind, how defaults and overrides merge, and
 * how a device's acknowledgement moves the reported state (docs/device-contract.md,
 * "Configuration"; ADR 0013).
 */

/** A host name (RFC 1123) or an IPv4 address: where the device syncs its clock (NTP/SNTP). */
const hostname = z
  .string()
  .max(253)
  .regex(
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i,
    'a host name such as pool.ntp.org',
  );

const finite = z.number().refine(Number.isFinite, 'a finite number');
/** value sent = raw × gain + offset. */
const calibration = z.strictObject({
  offset: finite.refine((v) => Math.abs(v) <= 10_000, 'offset within ±10000'),
  gain: finite.refine((v) => v > 0 && v <= 100, 'gain above 0, at most 100'),
});
const alarm = z
  .strictObject({ min: finite.optional(), max: finite.optional() })
  .refine((a) => a.min === undefined || a.max === undefined || a.min <= a.max, 'min ≤ max');

function perMetric<S extends z.ZodType>(kind: DeviceKind, value: S) {
  const shape = Object.fromEntries(metricsForKind(kind).map((m) => [m, value.optional()]));
  return z.strictObject(shape as Record<MetricName, z.ZodOptional<S>>);
}

/** The whole configuration a device of `kind` runs with. */
function fullSchema(kind: DeviceKind) {
  return z.strictObject({
    /** Seconds between readings. */
    reportingIntervalS: z.number().int().min(5).max(86_400),
    calibration: perMetric(kind, calibration),
    /** Local alarm thresholds the device checks itself (e.g. to sound a buzzer). */
    alarms: perMetric(kind, alarm),
    timeSyncServer: hostname,
  });
}

export const configSchemas = Object.fromEntries(
  deviceKinds.map((k) => [k, fullSchema(k)]),
) as Record<DeviceKind, ReturnType<typeof fullSchema>>;
/** A part of a configuration: defaults of a kind or a unit, or a device's own overrides. */
export const partialSchemas = Object.fromEntries(
  deviceKinds.map((k) => [k, fullSchema(k).partial()]),
) as Record<DeviceKind, ReturnType<ReturnType<typeof fullSchema>['partial']>>;

export type DeviceConfig = z.infer<(typeof configSchemas)[DeviceKind]>;
export type PartialConfig = Partial<DeviceConfig>;

/** What a device runs with when nobody set anything. */
export const builtinConfig: DeviceConfig = {
  reportingIntervalS: 300,
  calibration: {},
  alarms: {},
  timeSyncServer: 'pool.ntp.org',
};

/** A partial configuration for `kind`, or the first problems found (path: message). */
export function parsePartial(
  kind: DeviceKind,
  input: unknown,
): { ok: true; value: PartialConfig } | { ok: false; problems: string[] } {
  const r = partialSchemas[kind].safeParse(input);
  if (r.success) return { ok: true, value: r.data };
  return {
    ok: false,
    problems: r.error.issues
      .slice(0, 10)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
  };
}

/**
 * Built-in < kind default < unit default < the device's overrides. Calibration and alarms merge
 * per metric (a unit's pH calibration does not erase the kind's temperature one); a later layer
 * replaces a metric's entry whole.
 */
export function mergeConfig(...layers: (PartialConfig | undefined)[]): DeviceConfig {
  const out: DeviceConfig = { ...builtinConfig, calibration: {}, alarms: {} };
  for (const layer of layers) {
    if (!layer) continue;
    if (layer.reportingIntervalS !== undefined) out.reportingIntervalS = layer.reportingIntervalS;
    if (layer.timeSyncServer !== undefined) out.timeSyncServer = layer.timeSyncServer;
    if (layer.calibration) out.calibration = { ...out.calibration, ...layer.calibration };
    if (layer.alarms) out.alarms = { ...out.alarms, ...layer.alarms };
  }
  return out;
}

/** Key order does not make two configurations different. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>)
            .filter(([, x]) => x !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

export type SyncStatus = 'in_sync' | 'pending' | 'rejected';

/** In sync only when the device applied exactly the desired version. */
export function syncStatus(s: {
  desiredVersion: number;
  reportedVersion: number | null;
  rejectedVersion: number | null;
}): SyncStatus {
  if (s.reportedVersion === s.desiredVersion) return 'in_sync';
  if (s.rejectedVersion === s.desiredVersion) return 'rejected';
  return 'pending';
}

/** `devices/{id}/config/reported`: what the device did with a version. */
export const reportSchema = z.discriminatedUnion('status', [
  z.strictObject({
    version: z.number().int().min(1).max(2_147_483_647),
    status: z.literal('applied'),
    /** RFC 3339 with an offset, on the clock that stamps its readings. */
    appliedAt: z.iso.datetime({ offset: true }).optional(),
  }),
  z.strictObject({
    version: z.number().int().min(1).max(2_147_483_647),
    status: z.literal('rejected'),
    reason: z.string().min(1).max(200),
  }),
]);
export type ConfigReport = z.infer<typeof reportSchema>;

export type ReportRefusal = 'CONFIG_VERSION_UNKNOWN' | 'CONFIG_VERSION_STALE';

/**
 * What an acknowledgement does to the reported state. Versions are 1…desired and only grow:
 * - a version never desired (above the desired one) is refused (`CONFIG_VERSION_UNKNOWN`);
 * - `applied` below what the device already reported is refused (`CONFIG_VERSION_STALE`): a
 *   device applies versions in order, so an older one after a newer one is a replay; the same
 *   version again (a re-sent PUBLISH) changes nothing;
 * - `applied` of an older version than desired is history (which calibration produced which
 *   readings) but never makes the device in sync;
 * - `rejected` of the desired version marks it rejected with the reason.
 */
export function judgeReport(
  s: { desiredVersion: number; reportedVersion: number | null; rejectedVersion: number | null },
  r: ConfigReport,
):
  | { ok: true; effect: 'applied' | 'rejected' | 'duplicate' }
  | { ok: false; code: ReportRefusal; message: string } {
  if (r.version > s.desiredVersion)
    return {
      ok: false,
      code: 'CONFIG_VERSION_UNKNOWN',
      message: `version ${r.version} was never sent (the desired version is ${s.desiredVersion})`,
    };
  if (r.status === 'applied') {
    if (s.reportedVersion !== null && r.version < s.reportedVersion)
      return {
        ok: false,
        code: 'CONFIG_VERSION_STALE',
        message: `version ${r.version} is older than version ${s.reportedVersion}, already applied`,
      };
    return { ok: true, effect: r.version === s.reportedVersion ? 'duplicate' : 'applied' };
  }
  if (s.reportedVersion !== null && r.version <= s.reportedVersion)
    return {
      ok: false,
      code: 'CONFIG_VERSION_STALE',
      message: `version ${r.version} cannot be rejected: version ${s.reportedVersion} is already applied`,
    };
  return { ok: true, effect: r.version === s.rejectedVersion ? 'duplicate' : 'rejected' };
}

/** One stretch of time during which a device's readings were made with one configuration version. */
export interface CalibrationSpan {
  version: number;
  calibration: DeviceConfig['calibration'];
  /** The device's appliedAt (inclusive). */
  from: Date;
  /** The next version's appliedAt (exclusive), or null while it is still in use. */
  until: Date | null;
}

/** Which version made a reading of instant `ts` (undefined: before any configuration was applied). */
export function versionAt(spans: readonly CalibrationSpan[], ts: Date): number | undefined {
  let found: number | undefined;
  for (const s of spans) if (s.from.getTime() <= ts.getTime()) found = s.version;
  return found;
}

export const commandNames = ['reboot', 'resend', 'diagnostics'] as const;
export type CommandName = (typeof commandNames)[number];

/** `devices/{id}/commands/result`. */
export const resultSchema = z.strictObject({
  id: z.uuid(),
  status: z.enum(['ok', 'error']),
  result: z.record(z.string().max(64), z.unknown()).optional(),
  error: z.string().max(200).optional(),
});
export type CommandResult = z.infer<typeof resultSchema>;

export { metricCatalogue };
