import { asQueryable, inTurn, type DbExecutor } from '../db/scoped.ts';
import { hourPieces, rollup, type TimeseriesMode } from '../db/timeseries.ts';
import { metricNames, metricsForKind, type MetricName } from '../devices/metrics.ts';
import { listImages, readRollout, type RolloutView } from '../firmware/firmware-registry.ts';
import type { ReleaseRow, RolloutRow } from './firmware-pages.ts';
import { alertOverrideRepo } from './alert-override-repo.ts';
import { DEFAULT_TIME_ZONE } from './format-fns.ts';
import { gasPerLocalDay, lastLocalDays, localDaysRange } from './gas-day-fns.ts';

/**
 * Timestamps come back as PostgreSQL text (`2026-11-22 14:30:13.01+00`, what drizzle's driver
 * returns), typed as strings; `new Date()` reads them.
 *
 * What the dashboards read, always inside the caller's scope (runScoped: row-level security
 * decides which units, devices, values and alerts exist for them). SQL as text: these are
 * reporting joins, clearer in SQL than in a builder.
 */

export const ranges = {
  '24h': { ms: 86_400_000, bucket: 'hour' },
  '7d': { ms: 7 * 86_400_000, bucket: 'hour' },
  '30d': { ms: 30 * 86_400_000, bucket: 'hour' },
  '1y': { ms: 365 * 86_400_000, bucket: 'day' },
} as const;
export type Range = keyof typeof ranges;

export interface UnitSummary {
  id: string;
  name: string;
  kind: 'biodigester' | 'collection_point';
  site: string;
  devices: { id: string; online: boolean; lastSeenAt: string | null }[];
  latest: Record<string, { value: number; ts: string; deviceId: string }>;
  alerts: OpenAlert[];
}

export interface OpenAlert {
  id: number;
  ruleId: string;
  title: string;
  metric: string | null;
  deviceId: string;
  unitId: string;
  unitName: string;
  site: string;
  severity: 'warning' | 'critical';
  status: 'open' | 'closed';
  openedAt: string;
  closedAt: string | null;
  openValue: number | null;
  acknowledgedAt: string | null;
  /** Who acknowledged it, by id (kept) and by name (looked up now: "erased user #41" after erasure). */
  acknowledgedById: string | null;
  acknowledgedBy: string | null;
  ackNote: string | null;
}

const ALERT_COLUMNS = `a.id::int AS id, a.rule_id AS "ruleId", r.title, r.metric, a.device_id AS "deviceId", a.unit_id AS "unitId", u.name AS "unitName", s.name AS site,
  a.severity, a.status, a.opened_at AS "openedAt", a.closed_at AS "closedAt", a.open_value AS "openValue",
  a.acknowledged_at AS "acknowledgedAt", a.acknowledged_by_id AS "acknowledgedById", actor_display_name(a.acknowledged_by_id) AS "acknowledgedBy", a.ack_note AS "ackNote"`;
const ALERT_FROM = `alerts a JOIN alert_rules r ON r.id = a.rule_id JOIN units u ON u.id = a.unit_id JOIN sites s ON s.id = u.site_id`;

export function createDashboardQueries(deps: {
  mode: TimeseriesMode;
  /** The zone whose calendar days daily gas counts (config DASHBOARD_TIME_ZONE). */
  timeZone?: string;
}) {
  const timeZone = deps.timeZone ?? DEFAULT_TIME_ZONE;
  async function seriesOf(
    tx: DbExecutor,
    key: { unitId: string } | { deviceId: string },
    range: Range,
    metrics: readonly MetricName[],
    now: Date,
  ) {
    const { ms, bucket } = ranges[range];
    // Hours are hours anywhere; days are the zone's calendar days (its midnights), the last one
    // being today there.
    const { from, to } =
      bucket === 'hour'
        ? (() => {
            const end = new Date(Math.floor(now.getTime() / 3_600_000) * 3_600_000 + 3_600_000);
            return { from: new Date(end.getTime() - ms), to: end };
          })()
        : localDaysRange(lastLocalDays(now, Math.round(ms / 86_400_000), timeZone), timeZone);
    const points = await rollup(
      asQueryable(tx),
      { ...key, from, to, bucket, metrics, timeZone },
      { mode: deps.mode, scoped: true },
    );

    const t = points.map((p) => p.bucket.getTime() / 1000);
    const series = Object.fromEntries(
      metrics.map((m) => [
        m,
        {
          avg: points.map((p) => p.values[m]?.avg ?? null),
          min: points.map((p) => p.values[m]?.min ?? null),
          max: points.map((p) => p.values[m]?.max ?? null),
          count: points.map((p) => p.values[m]?.count ?? 0),
        },
      ]),
    );
    return { ...key, range, bucket, from, to, t, series };
  }
  return {
    /** Units of a kind (or one unit) with their devices, latest values and open alerts. */
    async units(
      tx: DbExecutor,
      filter: { kind?: 'biodigester' | 'collection_point'; unitId?: string },
    ): Promise<UnitSummary[]> {
      const q = asQueryable(tx);
      const { rows: units } = await q.query<{
        id: string;
        name: string;
        kind: UnitSummary['kind'];
        site: string;
      }>(
        `SELECT u.id, u.name, u.kind, s.name AS site FROM units u JOIN sites s ON s.id = u.site_id
          WHERE ($1::unit_kind IS NULL OR u.kind = $1) AND ($2::uuid IS NULL OR u.id = $2) ORDER BY s.name, u.name`,
        [filter.kind ?? null, filter.unitId ?? null],
      );
      if (units.length === 0) return [];
      const ids = units.map((u) => u.id);
      const [devices, latest, alerts] = await inTurn(
        () =>
          q.query<{ id: string; unit_id: string; online: boolean; last_seen_at: string | null }>(
            `SELECT id, unit_id, online, last_seen_at FROM devices WHERE unit_id = ANY($1::uuid[]) AND status <> 'retired' ORDER BY id`,
            [ids],
          ),
        () =>
          q.query<{
            unit_id: string;
            device_id: string;
            metric: string;
            ts: string;
            value: number;
          }>(
            `SELECT unit_id, device_id, metric, ts, value FROM latest_readings WHERE unit_id = ANY($1::uuid[]) ORDER BY ts`,
            [ids],
          ),
        () =>
          q.query<OpenAlert>(
            `SELECT ${ALERT_COLUMNS} FROM ${ALERT_FROM} WHERE a.status = 'open' AND a.unit_id = ANY($1::uuid[]) ORDER BY a.severity DESC, a.opened_at DESC`,
            [ids],
          ),
      );
      return units.map((u) => ({
        ...u,
        devices: devices.rows
          .filter((d) => d.unit_id === u.id)
          .map((d) => ({ id: d.id, online: d.online, lastSeenAt: d.last_seen_at })),
        // Ordered by ts: the newest value of a metric wins when two devices of a unit report it.
        latest: Object.fromEntries(
          latest.rows
            .filter((l) => l.unit_id === u.id)
            .map((l) => [l.metric, { value: l.value, ts: l.ts, deviceId: l.device_id }]),
        ),
        alerts: alerts.rows.filter((a) => a.unitId === u.id),
      }));
    },

    /** Chart data for a unit from the rollups: per bucket, each metric's avg, min and max. */
    async series(
      tx: DbExecutor,
      unitId: string,
      range: Range,
      metrics: readonly MetricName[],
      now = new Date(),
    ) {
      return seriesOf(tx, { unitId }, range, metrics, now);
    },

    /** The same chart data for one device (its battery and signal on the device page). */
    async deviceSeries(
      tx: DbExecutor,
      deviceId: string,
      range: Range,
      metrics: readonly MetricName[],
      now = new Date(),
    ) {
      return seriesOf(tx, { deviceId }, range, metrics, now);
    },

    /**
     * Biogas produced per local day (m³), from the hourly mean flow: each hour with data counts
     * as mean L/min × 60. Hours without data count as nothing, so an outage shows as less gas.
     */
    async dailyGas(tx: DbExecutor, unitId: string, days: number, now = new Date()) {
      const localDays = lastLocalDays(now, days, timeZone);
      // Hours cut at the zone's midnight where one falls inside them (+5:30): each reading's
      // flow counts in its own day.
      const pieces = await hourPieces(
        asQueryable(tx),
        { unitId, ...localDaysRange(localDays, timeZone), metric: 'gas_flow_lpm', timeZone },
        { mode: deps.mode, scoped: true },
      );
      return gasPerLocalDay(
        pieces.map((p) => ({ bucket: p.start, meanLpm: p.mean, minutes: p.minutes })),
        localDays,
        timeZone,
      );
    },

    /**
     * A unit's stored readings in [from, to), oldest first, for a download; at most `limit` rows
     * (one more is read, so the caller knows the range was cut).
     */
    async readings(tx: DbExecutor, unitId: string, from: Date, to: Date, limit: number) {
      const { rows } = await asQueryable(tx).query<
        { ts: string; deviceId: string; seq: string } & Record<MetricName, number | null>
      >(
        `SELECT ts, device_id AS "deviceId", seq::text AS seq, ${metricNames.join(', ')} FROM readings WHERE unit_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts, device_id, seq LIMIT $4`,
        [unitId, from, to, limit + 1],
      );
      return { rows: rows.slice(0, limit), truncated: rows.length > limit };
    },

    async alerts(
      tx: DbExecutor,
      filter: { status?: 'open' | 'closed'; unitId?: string; deviceId?: string; limit?: number },
    ): Promise<OpenAlert[]> {
      const { rows } = await asQueryable(tx).query<OpenAlert>(
        `SELECT ${ALERT_COLUMNS} FROM ${ALERT_FROM}
          WHERE ($1::text IS NULL OR a.status = $1) AND ($2::uuid IS NULL OR a.unit_id = $2) AND ($3::text IS NULL OR a.device_id = $3)
          ORDER BY a.status = 'open' DESC, a.opened_at DESC LIMIT $4`,
        [
          filter.status ?? null,
          filter.unitId ?? null,
          filter.deviceId ?? null,
          Math.min(filter.limit ?? 100, 500),
        ],
      );
      return rows;
    },

    /** Fleet health: every visible device with what a technician checks first. */
    async fleet(
      tx: DbExecutor,
      filter: {
        kind?: string;
        site?: string;
        state?: 'online' | 'offline' | 'attention';
        q?: string;
        id?: string;
      },
    ) {
      const { rows } = await asQueryable(tx).query<FleetRow>(
        `SELECT d.id, d.kind, d.status, d.online, d.last_seen_at AS "lastSeenAt", d.firmware_version AS "firmware", u.name AS unit, u.id AS "unitId", s.name AS site,
                (SELECT value FROM latest_readings l WHERE l.device_id = d.id AND l.metric = 'battery_v') AS battery,
                (SELECT value FROM latest_readings l WHERE l.device_id = d.id AND l.metric = 'rssi_dbm') AS rssi,
                (SELECT max(c.not_after) FROM certificates c WHERE c.device_id = d.id AND c.status = 'active') AS "certExpires",
                (SELECT c.status FROM certificates c WHERE c.device_id = d.id ORDER BY c.status = 'active' DESC, c.issued_at DESC LIMIT 1) AS "certStatus",
                (SELECT count(*)::int FROM quarantine q WHERE q.device_id = d.id AND q.status = 'open') AS quarantined,
                (SELECT count(*)::int FROM alerts a WHERE a.device_id = d.id AND a.status = 'open') AS "openAlerts"
           FROM devices d JOIN units u ON u.id = d.unit_id JOIN sites s ON s.id = u.site_id
          WHERE d.status <> 'retired' AND ($1::text IS NULL OR d.kind::text = $1) AND ($2::text IS NULL OR s.name = $2)
            AND ($3::text IS NULL OR d.id ILIKE '%' || $3 || '%' OR u.name ILIKE '%' || $3 || '%') AND ($4::text IS NULL OR d.id = $4)
          ORDER BY s.name, u.name, d.id`,
        [filter.kind ?? null, filter.site ?? null, filter.q ?? null, filter.id ?? null],
      );
      if (filter.state === 'online') return rows.filter((r) => r.online);
      if (filter.state === 'offline') return rows.filter((r) => !r.online);
      if (filter.state === 'attention')
        return rows.filter((r) => !r.online || r.openAlerts > 0 || r.quarantined > 0);
      return rows;
    },

    async sites(tx: DbExecutor): Promise<string[]> {
      return (
        await asQueryable(tx).query<{ name: string }>(`SELECT name FROM sites ORDER BY name`)
      ).rows.map((r) => r.name);
    },

    /** One device: its registry row, certificate history and recent quarantine items. */
    async device(tx: DbExecutor, id: string) {
      const q = asQueryable(tx);
      const [fleetRow] = await this.fleet(tx, { id });
      if (!fleetRow) return undefined;
      const [certs, quarantined, security] = await inTurn(
        () =>
          q.query<{
            serial: string;
            status: string;
            notBefore: string;
            notAfter: string;
            issuedAt: string;
            revokedAt: string | null;
            issuedBy: string;
            fingerprint: string;
          }>(
            `SELECT serial, status, not_before AS "notBefore", not_after AS "notAfter", issued_at AS "issuedAt", revoked_at AS "revokedAt", issued_by AS "issuedBy", fingerprint_sha256 AS fingerprint
             FROM certificates WHERE device_id = $1 ORDER BY issued_at DESC`,
            [id],
          ),
        () =>
          q.query<{
            id: number;
            receivedAt: string;
            status: string;
            reasons: { field: string; code: string; message: string }[];
            payloadSize: number;
          }>(
            `SELECT id::int AS id, received_at AS "receivedAt", status, reasons, payload_size AS "payloadSize" FROM quarantine WHERE device_id = $1 ORDER BY id DESC LIMIT 20`,
            [id],
          ),
        // Refusals recorded for this device (aggregated: audit/security-events.ts), a revoked
        // certificate knocking in the TLS handshake included; the last 7 days (the `at` index).
        () =>
          q.query<{
            at: string;
            action: string;
            reason: string | null;
            count: number | null;
            target: string | null;
            certSerial: string | null;
          }>(
            `SELECT at, action, after->>'reason' AS reason, (after->>'count')::int AS count, target_id AS target, after->>'certSerial' AS "certSerial"
             FROM audit_log WHERE at > now() - interval '7 days' AND actor_id = $1 AND action LIKE 'security.%' ORDER BY at DESC LIMIT 20`,
            [`device:${id}`],
          ),
      );
      return {
        ...fleetRow,
        certificates: certs.rows,
        quarantine: quarantined.rows,
        securityEvents: security.rows,
        metrics: metricsForKind(fleetRow.kind),
      };
    },

    /** Whether the caller may see this unit (row-level security answers). */
    async unitVisible(tx: DbExecutor, id: string): Promise<boolean> {
      return (
        (await asQueryable(tx).query(`SELECT 1 FROM units WHERE id = $1`, [id])).rows.length === 1
      );
    },

    /** Whether the caller may see this device (row-level security answers). */
    async deviceVisible(tx: DbExecutor, id: string): Promise<boolean> {
      return (
        (await asQueryable(tx).query(`SELECT 1 FROM devices WHERE id = $1`, [id])).rows.length === 1
      );
    },

    /** Units the caller may see (live updates are filtered by it). */
    async visibleUnits(tx: DbExecutor): Promise<Set<string>> {
      return new Set(
        (await asQueryable(tx).query<{ id: string }>(`SELECT id FROM units`)).rows.map((r) => r.id),
      );
    },

    async firmwareReleases(tx: DbExecutor): Promise<ReleaseRow[]> {
      return (await listImages(asQueryable(tx))).slice(0, 50);
    },

    async firmwareRollouts(tx: DbExecutor): Promise<RolloutRow[]> {
      const { rows } = await asQueryable(tx).query<RolloutRow>(
        `SELECT r.id, i.version, i.device_kind AS "deviceKind", r.status, r.paused_reason AS "pausedReason", r.created_at AS "createdAt",
                count(d.*) FILTER (WHERE d.status <> 'skipped')::int AS total,
                count(d.*) FILTER (WHERE d.status = 'installed')::int AS installed,
                count(d.*) FILTER (WHERE d.status = 'failed')::int AS failed,
                count(d.*) FILTER (WHERE d.status IN ('pending', 'sent', 'downloading', 'verifying'))::int AS waiting
           FROM firmware_rollouts r JOIN firmware_images i ON i.sha256 = r.image_sha256 LEFT JOIN firmware_rollout_devices d ON d.rollout_id = r.id
          GROUP BY r.id, i.version, i.device_kind ORDER BY r.created_at DESC LIMIT 50`,
      );
      return rows;
    },

    async firmwareRollout(tx: DbExecutor, id: string): Promise<RolloutView | undefined> {
      return readRollout(asQueryable(tx), id).catch((err: { code?: string }) => {
        if (err.code === 'FIRMWARE_ROLLOUT_NOT_FOUND') return undefined;
        throw err;
      });
    },

    /** Units' own thresholds, of the units the caller may see (row-level security). */
    overrides(tx: DbExecutor, unitIds?: readonly string[]) {
      return alertOverrideRepo.list(asQueryable(tx), unitIds);
    },

    async rules(tx: DbExecutor) {
      return (
        await asQueryable(tx).query<{
          id: string;
          unitKind: string;
          metric: string | null;
          condition: string;
          warn: number;
          critical: number | null;
          clear: number;
          enabled: boolean;
          title: string;
        }>(
          `SELECT id, unit_kind AS "unitKind", metric, condition, warn, critical, clear, enabled, title FROM alert_rules ORDER BY id`,
        )
      ).rows;
    },
  };
}

export interface FleetRow {
  id: string;
  kind: 'biodigester' | 'collection_point';
  status: string;
  online: boolean;
  lastSeenAt: string | null;
  firmware: string | null;
  unit: string;
  unitId: string;
  site: string;
  battery: number | null;
  rssi: number | null;
  certExpires: string | null;
  /** The status of the device's active certificate, else of its newest one (revoked, …); null with none. */
  certStatus: string | null;
  quarantined: number;
  openAlerts: number;
}

export type DashboardQueries = ReturnType<typeof createDashboardQueries>;
