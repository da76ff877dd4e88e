import type { Queryable } from '../db/timeseries.ts';
import type { DeviceKind } from '../devices/metrics.ts';
import type { CommandName, DeviceConfig, PartialConfig } from './config-fns.ts';

/**
 * The SQL of remote configuration and commands, in one place. Each function takes the handle it
 * runs on: the caller's scoped transaction (row-level security: technicians and admins only) or
 * the gateway's own pool.
 */

export interface ConfigRow {
  device_id: string;
  overrides: PartialConfig;
  desired_version: number;
  desired: DeviceConfig;
  desired_at: Date;
  reported_version: number | null;
  reported_at: Date | null;
  rejected_version: number | null;
  reject_reason: string | null;
}

export interface CommandRow {
  id: string;
  device_id: string;
  command: CommandName;
  params: Record<string, unknown>;
  status: 'pending' | 'sent' | 'ok' | 'error' | 'timed_out';
  result: Record<string, unknown> | null;
  error: string | null;
  created_by: string;
  created_at: Date;
  expires_at: Date;
  sent_at: Date | null;
  completed_at: Date | null;
}

const json = (v: unknown): string => JSON.stringify(v);

/** PostgreSQL's text form of a timestamptz ("2026-11-30 15:23:04.123+00"), as drizzle hands it over. */
function toDate(v: unknown): Date | null {
  if (v === null || v === undefined) return null;
  if (v instanceof Date) return v;
  const iso = (typeof v === 'string' ? v : JSON.stringify(v))
    .replace(' ', 'T')
    .replace(/([+-]\d\d)$/, '$1:00');
  return new Date(iso);
}

/** Every `*_at` column (and `until`) as a Date. */
function withDates<R extends object>(rows: R[]): R[] {
  for (const r of rows)
    for (const k of Object.keys(r))
      if (k.endsWith('_at') || k === 'until')
        (r as Record<string, unknown>)[k] = toDate((r as Record<string, unknown>)[k]);
  return rows;
}

async function select<R extends object>(
  q: Queryable,
  text: string,
  params: unknown[],
): Promise<R[]> {
  return withDates((await q.query<R>(text, params)).rows);
}

export const configRepo = {
  async device(
    q: Queryable,
    id: string,
  ): Promise<{ id: string; kind: DeviceKind; unit_id: string } | undefined> {
    const { rows } = await q.query<{ id: string; kind: DeviceKind; unit_id: string }>(
      `SELECT id, kind, unit_id FROM devices WHERE id = $1`,
      [id],
    );
    return rows[0];
  },

  /** The kind's defaults and the unit's, in that order (either may be missing). */
  async defaults(
    q: Queryable,
    kind: DeviceKind,
    unitId: string,
  ): Promise<{ kind?: PartialConfig; unit?: PartialConfig }> {
    const { rows } = await q.query<{ unit_id: string | null; config: PartialConfig }>(
      `SELECT unit_id, config FROM device_config_defaults
        WHERE kind = $1 AND (unit_id IS NULL OR unit_id = $2)`,
      [kind, unitId],
    );
    return {
      kind: rows.find((r) => r.unit_id === null)?.config,
      unit: rows.find((r) => r.unit_id !== null)?.config,
    };
  },

  async unitKind(q: Queryable, unitId: string): Promise<DeviceKind | undefined> {
    const { rows } = await q.query<{ kind: DeviceKind }>(`SELECT kind FROM units WHERE id = $1`, [
      unitId,
    ]);
    return rows[0]?.kind;
  },

  async versionConfig(
    q: Queryable,
    deviceId: string,
    version: number,
  ): Promise<DeviceConfig | undefined> {
    const { rows } = await q.query<{ config: DeviceConfig }>(
      `SELECT config FROM device_config_versions WHERE device_id = $1 AND version = $2`,
      [deviceId, version],
    );
    return rows[0]?.config;
  },

  async defaultsRow(
    q: Queryable,
    kind: DeviceKind,
    unitId: string | null,
  ): Promise<PartialConfig | undefined> {
    const { rows } = await q.query<{ config: PartialConfig }>(
      `SELECT config FROM device_config_defaults WHERE kind = $1 AND unit_id IS NOT DISTINCT FROM $2 FOR UPDATE`,
      [kind, unitId],
    );
    return rows[0]?.config;
  },

  async putDefaults(
    q: Queryable,
    kind: DeviceKind,
    unitId: string | null,
    config: PartialConfig,
    by: string,
  ): Promise<void> {
    await q.query(
      `INSERT INTO device_config_defaults (kind, unit_id, config, updated_by) VALUES ($1, $2, $3::jsonb, $4)
       ON CONFLICT ON CONSTRAINT device_config_defaults_scope_uq
       DO UPDATE SET config = excluded.config, updated_by = excluded.updated_by, updated_at = now()`,
      [kind, unitId, json(config), by],
    );
  },

  /** Devices a default applies to (retired ones keep what they had). */
  async devicesIn(q: Queryable, kind: DeviceKind, unitId: string | null): Promise<string[]> {
    const { rows } = await q.query<{ id: string }>(
      `SELECT id FROM devices WHERE kind = $1 AND ($2::uuid IS NULL OR unit_id = $2) AND status <> 'retired' ORDER BY id`,
      [kind, unitId],
    );
    return rows.map((r) => r.id);
  },

  async row(q: Queryable, deviceId: string, lock = false): Promise<ConfigRow | undefined> {
    const rows = await select<ConfigRow>(
      q,
      `SELECT * FROM device_configs WHERE device_id = $1${lock ? ' FOR UPDATE' : ''}`,
      [deviceId],
    );
    return rows[0];
  },

  /** A new desired version (and its history row), overrides as given. */
  async putDesired(
    q: Queryable,
    deviceId: string,
    version: number,
    desired: DeviceConfig,
    overrides: PartialConfig,
    by: string,
  ): Promise<void> {
    await q.query(
      `INSERT INTO device_configs (device_id, overrides, desired_version, desired) VALUES ($1, $2::jsonb, $3, $4::jsonb)
       ON CONFLICT (device_id) DO UPDATE SET overrides = excluded.overrides, desired_version = excluded.desired_version,
         desired = excluded.desired, desired_at = now()`,
      [deviceId, json(overrides), version, json(desired)],
    );
    await q.query(
      `INSERT INTO device_config_versions (device_id, version, config, created_by) VALUES ($1, $2, $3::jsonb, $4)`,
      [deviceId, version, json(desired), by],
    );
  },

  async setOverrides(q: Queryable, deviceId: string, overrides: PartialConfig): Promise<void> {
    await q.query(`UPDATE device_configs SET overrides = $2::jsonb WHERE device_id = $1`, [
      deviceId,
      json(overrides),
    ]);
  },

  async markApplied(
    q: Queryable,
    deviceId: string,
    version: number,
    appliedAt: Date,
    ackedAt: Date,
  ): Promise<void> {
    await q.query(
      `UPDATE device_configs SET reported_version = GREATEST(coalesce(reported_version, 0), $2), reported_at = $3
        WHERE device_id = $1`,
      [deviceId, version, ackedAt],
    );
    await q.query(
      // The earliest claim wins: a re-sent acknowledgement (or one without appliedAt, taken as
      // its arrival) may be processed before the first, and must not move the span later.
      `UPDATE device_config_versions SET applied_at = LEAST(coalesce(applied_at, $3), $3), acked_at = coalesce(acked_at, $4)
        WHERE device_id = $1 AND version = $2`,
      [deviceId, version, appliedAt, ackedAt],
    );
  },

  async markRejected(
    q: Queryable,
    deviceId: string,
    version: number,
    reason: string,
    ackedAt: Date,
  ): Promise<void> {
    await q.query(
      `UPDATE device_configs SET rejected_version = $2, reject_reason = $3, reported_at = $4 WHERE device_id = $1`,
      [deviceId, version, reason, ackedAt],
    );
    await q.query(
      `UPDATE device_config_versions SET reject_reason = $3, acked_at = coalesce(acked_at, $4)
        WHERE device_id = $1 AND version = $2`,
      [deviceId, version, reason, ackedAt],
    );
  },

  /** Applied versions whose span overlaps [from, to), oldest first, with the span's end. */
  async appliedSpans(
    q: Queryable,
    deviceId: string,
    from: Date,
    to: Date,
  ): Promise<{ version: number; config: DeviceConfig; applied_at: Date; until: Date | null }[]> {
    return select<{ version: number; config: DeviceConfig; applied_at: Date; until: Date | null }>(
      q,
      `SELECT * FROM (
         SELECT version, config, applied_at,
                lead(applied_at) OVER (ORDER BY applied_at, version) AS until
           FROM device_config_versions WHERE device_id = $1 AND applied_at IS NOT NULL
       ) s WHERE s.applied_at < $3 AND (s.until IS NULL OR s.until > $2)
       ORDER BY applied_at, version`,
      [deviceId, from, to],
    );
  },

  async insertCommand(
    q: Queryable,
    c: {
      deviceId: string;
      command: CommandName;
      params: Record<string, unknown>;
      expiresAt: Date;
      by: string;
    },
  ): Promise<CommandRow> {
    const rows = await select<CommandRow>(
      q,
      `INSERT INTO device_commands (device_id, command, params, expires_at, created_by)
       VALUES ($1, $2, $3::jsonb, $4, $5) RETURNING *`,
      [c.deviceId, c.command, json(c.params), c.expiresAt, c.by],
    );
    return rows[0]!;
  },

  async command(q: Queryable, id: string, lock = false): Promise<CommandRow | undefined> {
    const rows = await select<CommandRow>(
      q,
      `SELECT * FROM device_commands WHERE id = $1${lock ? ' FOR UPDATE' : ''}`,
      [id],
    );
    return rows[0];
  },

  async commands(q: Queryable, deviceId: string, limit: number): Promise<CommandRow[]> {
    const rows = await select<CommandRow>(
      q,
      `SELECT * FROM device_commands WHERE device_id = $1 ORDER BY created_at DESC, id LIMIT $2`,
      [deviceId, limit],
    );
    return rows;
  },

  /** Unanswered commands still inside their time-out, oldest first; marked sent. */
  /** Unanswered, unexpired commands of a device, oldest first (read only: publishing is not delivering). */
  async open(q: Queryable, deviceId: string, now: Date, id?: string): Promise<CommandRow[]> {
    return select<CommandRow>(
      q,
      `SELECT * FROM device_commands
        WHERE device_id = $1 AND status IN ('pending', 'sent') AND expires_at > $2
          AND ($3::uuid IS NULL OR id = $3)
        ORDER BY created_at`,
      [deviceId, now, id ?? null],
    );
  },

  /**
   * The device acknowledged the command (its PUBACK): `pending` becomes `sent`. Not past its
   * time-out (a late PUBACK does not revive it), not another device's command.
   */
  async markSent(q: Queryable, deviceId: string, id: string, now: Date): Promise<CommandRow[]> {
    return select<CommandRow>(
      q,
      `UPDATE device_commands SET status = 'sent', sent_at = $3
        WHERE id = $2 AND device_id = $1 AND status = 'pending' AND expires_at > $3
        RETURNING *`,
      [deviceId, id, now],
    );
  },

  async complete(
    q: Queryable,
    id: string,
    status: 'ok' | 'error' | 'timed_out',
    result: Record<string, unknown> | null,
    error: string | null,
    at: Date,
  ): Promise<void> {
    await q.query(
      // A result proves delivery too (it may overtake the gateway's record of the PUBACK).
      `UPDATE device_commands SET status = $2, result = $3::jsonb, error = $4, completed_at = $5,
              sent_at = coalesce(sent_at, $5) WHERE id = $1`,
      [id, status, result === null ? null : json(result), error, at],
    );
  },

  /** Every unanswered command past its time-out becomes `timed_out`. */
  async timeOut(q: Queryable, now: Date): Promise<CommandRow[]> {
    const rows = await select<CommandRow>(
      q,
      `UPDATE device_commands SET status = 'timed_out', completed_at = $1
        WHERE status IN ('pending', 'sent') AND expires_at <= $1 RETURNING *`,
      [now],
    );
    return rows;
  },
};
