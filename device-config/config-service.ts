import type { AuditActor, AuditLog } from '../audit/index.ts';
import type { Db } from '../db/client.ts';
import { asQueryable, type DbExecutor } from '../db/scoped.ts';
import type { Queryable } from '../db/timeseries.ts';
import { notifyDeviceEvent } from '../devices/device-events.ts';
import type { DeviceKind } from '../devices/metrics.ts';
import {
  canonical,
  judgeReport,
  mergeConfig,
  parsePartial,
  syncStatus,
  type CalibrationSpan,
  type ConfigReport,
  type DeviceConfig,
  type PartialConfig,
} from './config-fns.ts';
import { ConfigErrors } from './config-errors.ts';
import { configRepo } from './config-repo.ts';

/**
 * Desired and reported configuration (ADR 0013). Every change runs in one transaction with its
 * audit entry (before and after) and a pg_notify that reaches every gateway process on commit,
 * which then sends the new version to the device (device-config/delivery.ts). Built on the
 * caller's scoped transaction for the API (row-level security: technicians and admins), on the
 * owner's pool for the CLI and the gateway.
 */
/**
 * Which configuration version (and its calibration) produced a device's readings over
 * [from, to): one span per applied version, from the device's appliedAt to the next one's, oldest
 * first. A reading of instant ts was made with the span that contains ts (`versionAt`); one
 * before the first span, with the device's factory calibration. For MRV reports: any handle
 * (the pool, a scoped transaction through `asQueryable`).
 */
export async function calibrationHistory(
  q: Queryable,
  deviceId: string,
  from: Date,
  to: Date,
): Promise<CalibrationSpan[]> {
  const rows = await configRepo.appliedSpans(q, deviceId, from, to);
  return rows.map((r) => ({
    version: r.version,
    calibration: r.config.calibration,
    from: r.applied_at,
    until: r.until,
  }));
}

/** How old an appliedAt may be (a device that was offline longer acknowledges with its current time). */
const MAX_APPLIED_AGE_MS = 30 * 86_400_000;

export function createDeviceConfigService(deps: {
  db: Db;
  audit: Pick<AuditLog, 'record'>;
  now?: () => Date;
}) {
  const now = deps.now ?? (() => new Date());
  const system = { actorId: 'system', actorRole: 'system' };
  const inTx = <T>(fn: (tx: DbExecutor, q: Queryable) => Promise<T>): Promise<T> =>
    deps.db.transaction((tx) => fn(tx, asQueryable(tx)));

  async function deviceOf(q: Queryable, id: string) {
    const d = await configRepo.device(q, id);
    if (!d) throw new ConfigErrors.DeviceNotFound(id);
    return d;
  }

  /**
   * Recomputes the device's effective configuration; a new version when it changed (or when the
   * device has none yet). Answers the version now desired.
   */
  async function materialize(
    tx: DbExecutor,
    q: Queryable,
    device: { id: string; kind: DeviceKind; unit_id: string },
    actor: AuditActor,
    overrides?: PartialConfig,
  ): Promise<{ version: number; changed: boolean }> {
    const row = await configRepo.row(q, device.id, true);
    const layers = await configRepo.defaults(q, device.kind, device.unit_id);
    const own = overrides ?? row?.overrides ?? {};
    const desired = mergeConfig(layers.kind, layers.unit, own);
    if (row && canonical(row.desired) === canonical(desired)) {
      if (overrides) await configRepo.setOverrides(q, device.id, own);
      return { version: row.desired_version, changed: false };
    }
    const version = (row?.desired_version ?? 0) + 1;
    await configRepo.putDesired(q, device.id, version, desired, own, actor.actorId);
    await deps.audit.record(
      {
        ...actor,
        action: 'device.config_desired',
        targetType: 'device',
        targetId: device.id,
        before: row ? { version: row.desired_version, config: row.desired } : null,
        after: { version, config: desired },
      },
      tx,
    );
    await notifyDeviceEvent(tx, { type: 'config_changed', deviceId: device.id });
    return { version, changed: true };
  }

  function view(
    d: { id: string; kind: DeviceKind },
    row: Awaited<ReturnType<typeof configRepo.row>>,
  ) {
    if (!row) return undefined;
    return {
      deviceId: d.id,
      kind: d.kind,
      status: syncStatus({
        desiredVersion: row.desired_version,
        reportedVersion: row.reported_version,
        rejectedVersion: row.rejected_version,
      }),
      desiredVersion: row.desired_version,
      desired: row.desired,
      desiredAt: row.desired_at.toISOString(),
      overrides: row.overrides,
      reportedVersion: row.reported_version,
      reportedAt: row.reported_at?.toISOString() ?? null,
      rejectedVersion: row.rejected_version,
      rejectReason: row.reject_reason,
    };
  }

  return {
    /** Desired vs reported, and the status (in_sync, pending, rejected). */
    async get(deviceId: string) {
      return inTx(async (_tx, q) => {
        const d = await deviceOf(q, deviceId);
        const row = await configRepo.row(q, deviceId);
        if (row) return view(d, row)!;
        // Nothing desired yet: what the defaults make, version 0 (version 1 goes out at its next subscription).
        const layers = await configRepo.defaults(q, d.kind, d.unit_id);
        return view(d, {
          device_id: d.id,
          overrides: {},
          desired_version: 0,
          desired: mergeConfig(layers.kind, layers.unit),
          desired_at: now(),
          reported_version: null,
          reported_at: null,
          rejected_version: null,
          reject_reason: null,
        })!;
      });
    },

    /** Replaces the device's own overrides (validated for its kind); audited; sent on commit. */
    async setOverrides(deviceId: string, input: unknown, actor: AuditActor) {
      return inTx(async (tx, q) => {
        const d = await deviceOf(q, deviceId);
        const parsed = parsePartial(d.kind, input);
        if (!parsed.ok) throw new ConfigErrors.Invalid(d.kind, parsed.problems.join('; '));
        const before = await configRepo.row(q, deviceId, true);
        await materialize(tx, q, d, actor, parsed.value);
        const after = await configRepo.row(q, deviceId);
        // The overrides themselves are audited too: a change that merges to the same result still happened.
        await deps.audit.record(
          {
            ...actor,
            action: 'device.config_overrides',
            targetType: 'device',
            targetId: deviceId,
            before: { overrides: before?.overrides ?? {}, version: before?.desired_version ?? 0 },
            after: { overrides: parsed.value, version: after!.desired_version },
          },
          tx,
        );
        return view(d, after)!;
      });
    },

    /** Defaults of a kind (unitId null) or of one unit; every device they reach gets a new version. */
    async setDefaults(
      scope: { kind: DeviceKind; unitId: string | null },
      input: unknown,
      actor: AuditActor,
    ) {
      return inTx(async (tx, q) => {
        const parsed = parsePartial(scope.kind, input);
        if (!parsed.ok) throw new ConfigErrors.Invalid(scope.kind, parsed.problems.join('; '));
        if (scope.unitId) {
          if ((await configRepo.unitKind(q, scope.unitId)) !== scope.kind)
            throw new ConfigErrors.UnitNotFound(scope.unitId);
        }
        const before = await configRepo.defaultsRow(q, scope.kind, scope.unitId);
        await configRepo.putDefaults(q, scope.kind, scope.unitId, parsed.value, actor.actorId);
        await deps.audit.record(
          {
            ...actor,
            action: 'device.config_defaults',
            targetType: scope.unitId ? 'unit' : 'device_kind',
            targetId: scope.unitId ?? scope.kind,
            before: before ?? null,
            after: parsed.value,
          },
          tx,
        );
        const changed: string[] = [];
        for (const id of await configRepo.devicesIn(q, scope.kind, scope.unitId)) {
          const d = await deviceOf(q, id);
          if ((await materialize(tx, q, d, actor)).changed) changed.push(id);
        }
        return { kind: scope.kind, unitId: scope.unitId, defaults: parsed.value, changed };
      });
    },

    /** The gateway, at a subscription: the version to send (made from the defaults if it has none). */
    async desiredMessage(
      deviceId: string,
    ): Promise<{ version: number; config: DeviceConfig } | undefined> {
      return inTx(async (tx, q) => {
        const d = await configRepo.device(q, deviceId);
        if (!d) return undefined;
        let row = await configRepo.row(q, deviceId);
        if (!row) {
          await materialize(tx, q, d, system);
          row = await configRepo.row(q, deviceId);
        }
        return row ? { version: row.desired_version, config: row.desired } : undefined;
      });
    },

    /**
     * `devices/{id}/config/reported`. A refusal (unknown or stale version) changes nothing and
     * is answered to the device; anything else is stored and audited as the device.
     */
    async report(
      deviceId: string,
      report: ConfigReport,
      receivedAt: Date,
    ): Promise<{ ok: true; status: string } | { ok: false; code: string; message: string }> {
      return inTx(async (tx, q) => {
        const row = await configRepo.row(q, deviceId, true);
        if (!row)
          return {
            ok: false,
            code: 'CONFIG_VERSION_UNKNOWN',
            message: `no configuration was sent to ${deviceId} yet`,
          };
        const s = {
          desiredVersion: row.desired_version,
          reportedVersion: row.reported_version,
          rejectedVersion: row.rejected_version,
        };
        if (report.status === 'applied' && report.appliedAt !== undefined) {
          // Inside what PostgreSQL and the readings' own window hold: a year-0 clock is refused, not stored.
          const at = Date.parse(report.appliedAt);
          if (!(at >= receivedAt.getTime() - MAX_APPLIED_AGE_MS))
            return {
              ok: false,
              code: 'CONFIG_APPLIED_AT_INVALID',
              message: `appliedAt ${report.appliedAt.slice(0, 40)} is more than 30 days before it was received`,
            };
        }
        const judged = judgeReport(s, report);
        if (!judged.ok) return judged;
        // A device clock ahead of ours is capped at the time we received it.
        const at =
          report.status === 'applied' && report.appliedAt ? new Date(report.appliedAt) : receivedAt;
        const appliedAt = at.getTime() > receivedAt.getTime() ? receivedAt : at;
        if (judged.effect === 'duplicate') {
          // Acknowledgements are handled concurrently: the first one may be handled second.
          if (report.status === 'applied' && report.appliedAt)
            await configRepo.markApplied(q, deviceId, report.version, appliedAt, receivedAt);
          return { ok: true, status: syncStatus(s) };
        }
        if (report.status === 'applied')
          await configRepo.markApplied(q, deviceId, report.version, appliedAt, receivedAt);
        else await configRepo.markRejected(q, deviceId, report.version, report.reason, receivedAt);
        const after = {
          ...s,
          reportedVersion:
            report.status === 'applied'
              ? Math.max(s.reportedVersion ?? 0, report.version)
              : s.reportedVersion,
          rejectedVersion: report.status === 'rejected' ? report.version : s.rejectedVersion,
        };
        await deps.audit.record(
          {
            actorId: `device:${deviceId}`,
            actorRole: 'device',
            action: 'device.config_reported',
            targetType: 'device',
            targetId: deviceId,
            before: { ...s, status: syncStatus(s) },
            after: {
              ...after,
              status: syncStatus(after),
              ...(report.status === 'rejected' ? { reason: report.reason } : {}),
            },
          },
          tx,
        );
        return { ok: true, status: syncStatus(after) };
      });
    },

    /**
     * Which configuration version (and its calibration) produced the device's readings over
     * [from, to): one span per applied version, from the device's appliedAt to the next one's.
     * A reading of instant ts was made with the span that contains ts (config-fns.ts versionAt).
     */
    calibrationHistory: (deviceId: string, from: Date, to: Date): Promise<CalibrationSpan[]> =>
      calibrationHistory(asQueryable(deps.db), deviceId, from, to),

    now,
  };
}

export type DeviceConfigService = ReturnType<typeof createDeviceConfigService>;
