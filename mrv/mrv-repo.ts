import { copyOutBinary, type BinaryRowView } from '../db/pg-copy-out.ts';
import { asQueryable, transactionClient, type DbExecutor } from '../db/scoped.ts';
import { metricNames } from '../devices/metrics.ts';
import type { RawReading } from './mrv-encoding.ts';
import type { CalibrationWindow } from './mrv-fns.ts';

/**
 * The SQL of MRV, in one place. Readings are read from the archive (mrv_readings_archive, 0022)
 * in leaf order by keyset batches on its primary key, so a month of a digester's minutes is
 * streamed in constant memory, and ordered by bytes (its device_id is in the "C" collation).
 */

export const BATCH = 5000;
/** Leaves per COPY of the issuing pass (scanLeaves). */
export const SCAN_BATCH = 20_000;
const METRICS_SQL = metricNames.map((m) => `"${m}"`).join(', ');
const COLUMNS = `device_id, unit_id, (extract(epoch FROM ts) * 1000000)::bigint::text AS ts_us, seq::text AS seq, ${METRICS_SQL}`;

/** A timestamptz as ISO 8601 UTC text (drizzle's execute returns timestamps as PostgreSQL text). */
const iso = (col: string) => `to_char(${col} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

type Row = Record<string, unknown> & {
  device_id: string;
  unit_id: string;
  ts_us: string;
  seq: string;
};

function toReading(row: Row): RawReading {
  const values: Record<string, number> = {};
  for (const m of metricNames) {
    const v = row[m];
    if (v !== null && v !== undefined) values[m] = v as number;
  }
  return {
    deviceId: row.device_id,
    unitId: row.unit_id,
    tsMicros: BigInt(row.ts_us),
    seq: BigInt(row.seq),
    values,
  };
}

/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01), for binary timestamps. */
const PG_EPOCH_MICROS = 946_684_800_000_000n;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Decodes binary COPY rows of (device_id, unit_id, ts, seq, metrics…); the leaves of one unit repeat their ids, so each id string is made once. */
function createLeafDecoder() {
  let deviceBytes = Buffer.alloc(0);
  let device = '';
  let unitBytes = Buffer.alloc(0);
  let unit = '';
  const same = (kept: Buffer, v: BinaryRowView, i: number) =>
    kept.length === v.length[i] &&
    v.buf.compare(kept, 0, kept.length, v.start[i], v.start[i]! + v.length[i]) === 0;
  return (v: BinaryRowView): RawReading => {
    const { buf, start, length } = v;
    if (!same(deviceBytes, v, 0)) {
      deviceBytes = Buffer.from(buf.subarray(start[0], start[0]! + length[0]!));
      device = deviceBytes.toString('latin1');
    }
    if (!same(unitBytes, v, 1)) {
      unitBytes = Buffer.from(buf.subarray(start[1], start[1]! + 16));
      const h = unitBytes.toString('hex');
      unit = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    }
    const values: Record<string, number> = {};
    for (let m = 0; m < metricNames.length; m += 1)
      if (length[4 + m] === 8) values[metricNames[m]!] = buf.readDoubleBE(start[4 + m]);
    return {
      deviceId: device,
      unitId: unit,
      tsMicros: buf.readBigInt64BE(start[2]) + PG_EPOCH_MICROS,
      seq: buf.readBigInt64BE(start[3]),
      values,
    };
  };
}

export interface UnitInfo {
  id: string;
  name: string;
  kind: string;
  siteId: string;
  siteName: string;
}

/** A report as listed: what it covers and its root, without the signed document. */
export interface ReportSummary {
  id: string;
  /** A digester report's unit; null for a site report. */
  unitId: string | null;
  /** A site report's site; null for a digester report. */
  siteId: string | null;
  periodStart: Date;
  periodEnd: Date;
  version: number;
  supersedes: string | null;
  reason: string | null;
  issuedAt: Date;
  issuedBy: string;
  merkleRoot: string;
  leafCount: number;
}

export function createMrvRepo() {
  return {
    async unit(tx: DbExecutor, unitId: string): Promise<UnitInfo | undefined> {
      const { rows } = await asQueryable(tx).query<UnitInfo>(
        'SELECT u.id, u.name, u.kind::text AS kind, s.id AS "siteId", s.name AS "siteName" FROM units u JOIN sites s ON s.id = u.site_id WHERE u.id::text = $1 OR u.name = $1 ORDER BY u.id::text = $1 DESC LIMIT 2',
        [unitId],
      );
      if (rows.length > 1 && rows[0]!.id !== unitId)
        throw Object.assign(new Error(`unit name ${unitId} is ambiguous: give its id`), {
          code: 'MRV_UNIT_AMBIGUOUS',
        });
      return rows[0];
    },

    /** A site (id or name) and its digesters, in leaf order (unit id bytes). */
    async siteDigesters(
      tx: DbExecutor,
      site: string,
    ): Promise<{ id: string; name: string; digesters: UnitInfo[] } | undefined> {
      const q = asQueryable(tx);
      const { rows } = await q.query<{ id: string; name: string }>(
        'SELECT id, name FROM sites WHERE id::text = $1 OR name = $1 ORDER BY id::text = $1 DESC LIMIT 2',
        [site],
      );
      if (rows.length > 1 && rows[0]!.id !== site)
        throw Object.assign(new Error(`site name ${site} is ambiguous: give its id`), {
          code: 'MRV_SITE_AMBIGUOUS',
        });
      const s = rows[0];
      if (!s) return undefined;
      const units = await q.query<UnitInfo>(
        `SELECT u.id, u.name, u.kind::text AS kind, $1::uuid AS "siteId", $2::text AS "siteName" FROM units u
          WHERE u.site_id = $1 AND u.kind = 'biodigester' ORDER BY u.id`,
        [s.id, s.name],
      );
      return { ...s, digesters: units.rows };
    },

    /**
     * The reports whose archived rows a new report of these units and period takes as leaves:
     * every report already issued over any of them in an overlapping period (a row is archived
     * once, by the first report that needed it, digester or site), plus the new one. Rows
     * archived later carry later ids, so a report's leaves never change after issue.
     */
    async leafSourcesFor(
      tx: DbExecutor,
      unitIds: readonly string[],
      start: Date,
      end: Date,
      reportId: string,
    ): Promise<string[]> {
      const { rows } = await asQueryable(tx).query<{ id: string }>(
        `SELECT id FROM mrv_reports WHERE period_start < $3 AND period_end > $2
            AND (unit_id = ANY($1::uuid[]) OR unit_ids && $1::uuid[]) ORDER BY id`,
        [`{${unitIds.join(',')}}`, start, end],
      );
      return [reportId, ...rows.map((r) => r.id)];
    },

    /** How many of a unit's archived rows of the period are leaves of a report with these sources. */
    async leafCount(
      tx: DbExecutor,
      unitId: string,
      start: Date,
      end: Date,
      reports: readonly string[],
    ): Promise<number> {
      const { rows } = await asQueryable(tx).query<{ n: number }>(
        'SELECT count(*)::int AS n FROM mrv_readings_archive WHERE unit_id = $1 AND ts >= $2 AND ts < $3 AND archived_by = ANY($4::uuid[])',
        [unitId, start, end, `{${reports.join(',')}}`],
      );
      return rows[0]!.n;
    },

    /** The unit an archived reading was stored under (a site report's leaves are grouped by unit). */
    async unitOfReading(
      tx: DbExecutor,
      deviceId: string,
      tsMicros: bigint,
    ): Promise<string | undefined> {
      const { rows } = await asQueryable(tx).query<{ unit_id: string }>(
        `SELECT unit_id FROM mrv_readings_archive WHERE device_id = $1 AND ts = timestamptz 'epoch' + $2::bigint * interval '1 microsecond'`,
        [deviceId, tsMicros.toString()],
      );
      return rows[0]?.unit_id;
    },

    /** Every digester's id, in a stable order (`mrv issue --all`). */
    async digesters(tx: DbExecutor): Promise<string[]> {
      const { rows } = await asQueryable(tx).query<{ id: string }>(
        "SELECT id FROM units WHERE kind = 'biodigester' ORDER BY name, id",
      );
      return rows.map((r) => r.id);
    },

    async siteParams(tx: DbExecutor, siteId: string): Promise<unknown> {
      const { rows } = await asQueryable(tx).query<{ params: unknown }>(
        'SELECT params FROM mrv_site_parameters WHERE site_id = $1',
        [siteId],
      );
      return rows[0]?.params ?? {};
    },

    async setSiteParams(
      tx: DbExecutor,
      siteId: string,
      params: unknown,
      by: string,
    ): Promise<void> {
      await asQueryable(tx).query(
        'INSERT INTO mrv_site_parameters (site_id, params, updated_by) VALUES ($1, $2::jsonb, $3) ON CONFLICT (site_id) DO UPDATE SET params = EXCLUDED.params, updated_by = EXCLUDED.updated_by, updated_at = now()',
        [siteId, JSON.stringify(params), by],
      );
    },

    /** A report's leaf hashes, one row per chunk of the signed tree (migration 0032). */
    async insertLeafHashes(
      tx: DbExecutor,
      reportId: string,
      chunks: readonly { index: number; hashes: Buffer }[],
    ): Promise<void> {
      if (chunks.length === 0) return;
      // One bytea cut in SQL rather than a bytea[] (an array literal escaped element by element).
      const offsets: number[] = [];
      let at = 0;
      for (const c of chunks) {
        offsets.push(at);
        at += c.hashes.length;
      }
      await asQueryable(tx).query(
        'INSERT INTO mrv_report_leaf_hashes (report_id, chunk, hashes) SELECT $1, c, substring($5::bytea FROM o + 1 FOR l) FROM unnest($2::int[], $3::int[], $4::int[]) AS x(c, o, l)',
        [
          reportId,
          chunks.map((c) => c.index),
          offsets,
          chunks.map((c) => c.hashes.length),
          Buffer.concat(chunks.map((c) => c.hashes)),
        ],
      );
    },

    /** The stored leaf hashes of a report in leaf order, chunk by chunk (keyset batches). */
    async *leafHashes(tx: DbExecutor, reportId: string): AsyncGenerator<Buffer> {
      let after = -1;
      for (;;) {
        const { rows } = await asQueryable(tx).query<{ chunk: number; hashes: Buffer }>(
          'SELECT chunk, hashes FROM mrv_report_leaf_hashes WHERE report_id = $1 AND chunk > $2 ORDER BY chunk LIMIT 256',
          [reportId, after],
        );
        for (const r of rows) yield r.hashes;
        if (rows.length < 256) return;
        after = rows[rows.length - 1]!.chunk;
      }
    },

    /** Serialises issuing per unit and period (versions are numbered in order). */
    async lockPeriod(tx: DbExecutor, unitId: string, start: Date): Promise<void> {
      await asQueryable(tx).query(
        "SELECT pg_advisory_xact_lock(hashtextextended('mrv:' || $1 || ':' || $2, 0))",
        [unitId, start.toISOString()],
      );
    },

    /** The latest version of a unit's (or, with `site`, a site's) report for a period. */
    async latestVersion(
      tx: DbExecutor,
      unitId: string,
      start: Date,
      site = false,
    ): Promise<{ id: string; version: number } | undefined> {
      const { rows } = await asQueryable(tx).query<{ id: string; version: number }>(
        `SELECT id, version FROM mrv_reports WHERE ${site ? 'site_id' : 'unit_id'} = $1 AND period_start = $2 ORDER BY version DESC LIMIT 1`,
        [unitId, start],
      );
      return rows[0];
    },

    /**
     * Copies the period's raw readings into the archive (kept ≥ 7 years); rows already there stay
     * as they were. Found through every device ever on the unit (0040) by the readings key, not
     * by scanning the whole fleet's period for the unit id.
     */
    async archive(
      tx: DbExecutor,
      unitId: string,
      start: Date,
      end: Date,
      reportId: string,
    ): Promise<number> {
      const { rows } = await asQueryable(tx).query<{ n: number }>(
        `WITH ins AS (INSERT INTO mrv_readings_archive (device_id, ts, unit_id, seq, ${METRICS_SQL}, archived_by)
           SELECT device_id, ts, unit_id, seq, ${METRICS_SQL}, $4 FROM readings
            WHERE device_id IN (SELECT device_id FROM device_unit_history WHERE unit_id = $1)
              AND unit_id = $1 AND ts >= $2 AND ts < $3
           ON CONFLICT (device_id, ts) DO NOTHING RETURNING 1) SELECT count(*)::int AS n FROM ins`,
        [unitId, start, end, reportId],
      );
      return rows[0]!.n;
    },

    /** A report's leaves in order: the unit's archived rows of the period archived by one of `reports` (its version line). */
    async *leaves(
      tx: DbExecutor,
      unitId: string,
      start: Date,
      end: Date,
      reports: readonly string[],
      from?: { deviceId: string; tsMicros: bigint },
    ): AsyncGenerator<RawReading> {
      const q = asQueryable(tx);
      const fetch = (after?: { device: string; ts: string }) => {
        // Two texts rather than `$5 IS NULL OR …`, which would keep the planner from the index
        // (unit_id, device_id, ts) and sort the whole period for every batch.
        const keyset = after
          ? `AND (device_id, ts) > ($5::text COLLATE "C", timestamptz 'epoch' + $6::bigint * interval '1 microsecond')`
          : '';
        return q.query<Row>(
          `SELECT ${COLUMNS} FROM mrv_readings_archive
            WHERE unit_id = $1 AND ts >= $2 AND ts < $3 AND archived_by = ANY($4::uuid[]) ${keyset}
            ORDER BY unit_id, device_id, ts LIMIT ${BATCH}`,
          [
            unitId,
            start,
            end,
            `{${reports.join(',')}}`,
            ...(after ? [after.device, after.ts] : []),
          ],
        );
      };
      // The next batch is asked for as soon as this one arrives (its keyset is this batch's last
      // row), so the database reads it while the caller hashes and sums this one.
      let next: Promise<{ rows: Row[] }> | undefined = fetch(
        from ? { device: from.deviceId, ts: from.tsMicros.toString() } : undefined,
      );
      try {
        while (next) {
          const { rows }: { rows: Row[] } = await next;
          const last = rows[rows.length - 1];
          next =
            rows.length === BATCH && last
              ? fetch({ device: last.device_id, ts: last.ts_us })
              : undefined;
          for (const row of rows) yield toReading(row);
        }
      } finally {
        // A caller that stops early (a proof needs one chunk) leaves at most one query in flight.
        next?.catch(() => undefined);
      }
    },

    /**
     * A report's leaves in order, all of them, in batches: the same rows as `leaves`, read by
     * binary COPY (no text) in keyset slices of SCAN_BATCH (the issuing pass reads every leaf
     * once). Needs an open transaction. `leaves` reads a slice (a proof's chunk) or outside a
     * transaction.
     */
    async *scanLeaves(
      tx: DbExecutor,
      unitId: string,
      start: Date,
      end: Date,
      reports: readonly string[],
      /** Run between two slices, when the connection is free for the caller's own statements. */
      betweenSlices?: () => Promise<void>,
    ): AsyncGenerator<RawReading[]> {
      for (const id of [unitId, ...reports])
        if (!UUID.test(id)) throw new Error(`scanLeaves: ${JSON.stringify(id)} is not a UUID`);
      const client = transactionClient(tx);
      const at = (d: Date) => `${client.escapeLiteral(d.toISOString())}::timestamptz`;
      const decode = createLeafDecoder();
      // COPY takes no bound parameters: every value below is a checked UUID, a Date's ISO text, a
      // bigint or a quoted device id. In slices of SCAN_BATCH leaves on the keyset; between two,
      // the connection is free and `betweenSlices` sends what the caller has for it (the leaf
      // hashes): during a COPY nothing else may be sent on it.
      let after = '';
      for (;;) {
        let n = 0;
        let last: RawReading | undefined;
        for await (const batch of copyOutBinary(
          client,
          `SELECT device_id, unit_id, ts, seq, ${METRICS_SQL} FROM mrv_readings_archive
            WHERE unit_id = '${unitId}'::uuid AND ts >= ${at(start)} AND ts < ${at(end)}
              AND archived_by = ANY('{${reports.join(',')}}'::uuid[]) ${after}
            ORDER BY unit_id, device_id, ts LIMIT ${SCAN_BATCH}`,
          4 + metricNames.length,
          decode,
        )) {
          n += batch.length;
          last = batch[batch.length - 1];
          yield batch;
        }
        if (n < SCAN_BATCH || !last) return;
        await betweenSlices?.();
        after = `AND (device_id, ts) > (${client.escapeLiteral(last.deviceId)} COLLATE "C", timestamptz 'epoch' + ${last.tsMicros}::bigint * interval '1 microsecond')`;
      }
    },

    /** The leaf at a position (its keyset, to read the chunk after it). */
    async leafAt(
      tx: DbExecutor,
      unitId: string,
      start: Date,
      end: Date,
      reports: readonly string[],
      index: number,
    ): Promise<{ deviceId: string; tsMicros: bigint } | undefined> {
      const { rows } = await asQueryable(tx).query<{ device_id: string; ts_us: string }>(
        `SELECT device_id, (extract(epoch FROM ts) * 1000000)::bigint::text AS ts_us FROM mrv_readings_archive
          WHERE unit_id = $1 AND ts >= $2 AND ts < $3 AND archived_by = ANY($4::uuid[]) ORDER BY unit_id, device_id, ts OFFSET $5 LIMIT 1`,
        [unitId, start, end, `{${reports.join(',')}}`, index],
      );
      return rows[0] ? { deviceId: rows[0].device_id, tsMicros: BigInt(rows[0].ts_us) } : undefined;
    },

    /** Position of one reading among a report's leaves: how many come before it. */
    async leafIndex(
      tx: DbExecutor,
      unitId: string,
      start: Date,
      end: Date,
      reports: readonly string[],
      deviceId: string,
      tsMicros: bigint,
    ): Promise<number> {
      const { rows } = await asQueryable(tx).query<{ n: number }>(
        `SELECT count(*)::int AS n FROM mrv_readings_archive WHERE unit_id = $1 AND ts >= $2 AND ts < $3 AND archived_by = ANY($4::uuid[])
           AND (device_id, ts) < ($5::text COLLATE "C", timestamptz 'epoch' + $6::bigint * interval '1 microsecond')`,
        [unitId, start, end, `{${reports.join(',')}}`, deviceId, tsMicros.toString()],
      );
      return rows[0]!.n;
    },

    async calibrations(
      tx: DbExecutor,
      unitId: string,
      start: Date,
      end: Date,
    ): Promise<(CalibrationWindow & { reference: string; recordedBy: string })[]> {
      const { rows } = await asQueryable(tx).query<{
        device_id: string;
        metric: string;
        from_us: string;
        to_us: string | null;
        result: 'pass' | 'fail';
        reference: string;
        recorded_by: string;
      }>(
        `SELECT c.device_id, c.metric, (extract(epoch FROM c.valid_from) * 1000000)::bigint::text AS from_us, (extract(epoch FROM c.valid_to) * 1000000)::bigint::text AS to_us, c.result, c.reference, c.recorded_by
           FROM mrv_calibrations c JOIN devices d ON d.id = c.device_id
          WHERE d.unit_id = $1 AND c.valid_from < $3 AND (c.valid_to IS NULL OR c.valid_to > $2) ORDER BY c.device_id, c.metric, c.valid_from, c.id`,
        [unitId, start, end],
      );
      return rows.map((r) => ({
        deviceId: r.device_id,
        metric: r.metric,
        validFromMicros: BigInt(r.from_us),
        validToMicros: r.to_us === null ? null : BigInt(r.to_us),
        result: r.result,
        reference: r.reference,
        recordedBy: r.recorded_by,
      }));
    },

    async addCalibration(
      tx: DbExecutor,
      c: {
        deviceId: string;
        metric: string;
        validFrom: Date;
        validTo: Date | null;
        result: 'pass' | 'fail';
        reference: string;
        recordedBy: string;
      },
    ): Promise<number> {
      const { rows } = await asQueryable(tx).query<{ id: number }>(
        'INSERT INTO mrv_calibrations (device_id, metric, valid_from, valid_to, result, reference, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id',
        [c.deviceId, c.metric, c.validFrom, c.validTo, c.result, c.reference, c.recordedBy],
      );
      return rows[0]!.id;
    },

    /** Quarantined payloads of the unit received in the period, by reason code (a payload with two reasons counts under both). */
    async quarantine(
      tx: DbExecutor,
      unitId: string,
      start: Date,
      end: Date,
    ): Promise<{ total: number; byReason: Record<string, number> }> {
      const q = asQueryable(tx);
      const total = await q.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM quarantine WHERE unit_id = $1 AND received_at >= $2 AND received_at < $3',
        [unitId, start, end],
      );
      const by = await q.query<{ code: string; n: number }>(
        `SELECT coalesce(r->>'code', 'unknown') AS code, count(DISTINCT q.id)::int AS n FROM quarantine q, jsonb_array_elements(q.reasons) r
          WHERE q.unit_id = $1 AND q.received_at >= $2 AND q.received_at < $3 GROUP BY 1 ORDER BY 1`,
        [unitId, start, end],
      );
      return {
        total: total.rows[0]!.n,
        byReason: Object.fromEntries(by.rows.map((r) => [r.code, r.n])),
      };
    },

    /** Devices, the certificates that authenticated them in the period, and alerts open during it. */
    async provenance(tx: DbExecutor, unitId: string, start: Date, end: Date) {
      const q = asQueryable(tx);
      const devices = await q.query<{
        id: string;
        status: string;
        firmwareVersion: string | null;
        hardwareRevision: string | null;
      }>(
        'SELECT id, status::text AS status, firmware_version AS "firmwareVersion", hardware_revision AS "hardwareRevision" FROM devices WHERE unit_id = $1 ORDER BY id COLLATE "C"',
        [unitId],
      );
      const certificates = await q.query<{
        deviceId: string;
        serial: string;
        fingerprintSha256: string;
        notBefore: string;
        notAfter: string;
        status: string;
        revokedAt: string | null;
      }>(
        `SELECT c.device_id AS "deviceId", c.serial, c.fingerprint_sha256 AS "fingerprintSha256", ${iso('c.not_before')} AS "notBefore", ${iso('c.not_after')} AS "notAfter", c.status, ${iso('c.revoked_at')} AS "revokedAt"
           FROM certificates c JOIN devices d ON d.id = c.device_id
          WHERE d.unit_id = $1 AND c.not_before < $3 AND c.not_after > $2 AND (c.revoked_at IS NULL OR c.revoked_at > $2) ORDER BY c.device_id COLLATE "C", c.not_before, c.serial`,
        [unitId, start, end],
      );
      const alerts = await q.query<{
        id: number;
        ruleId: string;
        deviceId: string;
        severity: string;
        openedAt: string;
        closedAt: string | null;
      }>(
        `SELECT id, rule_id AS "ruleId", device_id AS "deviceId", severity, ${iso('opened_at')} AS "openedAt", ${iso('closed_at')} AS "closedAt" FROM alerts
          WHERE unit_id = $1 AND opened_at < $3 AND (closed_at IS NULL OR closed_at >= $2) ORDER BY opened_at, id`,
        [unitId, start, end],
      );
      // Firmware each device ran over the period, from the history the database records on every
      // change of devices.firmware_version (migration 0033), clipped to the period.
      const firmware = await q.query<{
        deviceId: string;
        version: string | null;
        from: string;
        to: string;
        source: string;
      }>(
        `WITH h AS (SELECT f.device_id, f.version, f.since, f.source, lead(f.since) OVER (PARTITION BY f.device_id ORDER BY f.since, f.id) AS until
                      FROM device_firmware_history f JOIN devices d ON d.id = f.device_id WHERE d.unit_id = $1)
         SELECT device_id AS "deviceId", version, ${iso('greatest(since, $2)')} AS "from", ${iso('least(until, $3)')} AS "to", source
           FROM h WHERE since < $3 AND (until IS NULL OR until > $2) ORDER BY device_id COLLATE "C", since`,
        [unitId, start, end],
      );
      return {
        devices: devices.rows,
        certificates: certificates.rows,
        alerts: alerts.rows,
        firmware: firmware.rows,
      };
    },

    async insertReport(
      tx: DbExecutor,
      r: {
        id: string;
        unitId: string | null;
        siteId?: string;
        unitIds?: readonly string[];
        leafSources: readonly string[];
        start: Date;
        end: Date;
        version: number;
        supersedes: string | null;
        reason: string | null;
        issuedAt: Date;
        issuedBy: string;
        root: string;
        size: number;
        keyId: string;
        document: string;
      },
    ): Promise<void> {
      await asQueryable(tx).query(
        `INSERT INTO mrv_reports (id, unit_id, period_start, period_end, version, supersedes, reason, issued_at, issued_by, merkle_root, leaf_count, key_id, document, site_id, unit_ids, leaf_sources)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15::uuid[], $16::uuid[])`,
        [
          r.id,
          r.unitId,
          r.start,
          r.end,
          r.version,
          r.supersedes,
          r.reason,
          r.issuedAt,
          r.issuedBy,
          r.root,
          r.size,
          r.keyId,
          r.document,
          r.siteId ?? null,
          r.unitIds ? `{${r.unitIds.join(',')}}` : null,
          `{${r.leafSources.join(',')}}`,
        ],
      );
    },

    async report(
      tx: DbExecutor,
      id: string,
    ): Promise<
      | {
          id: string;
          unitId: string | null;
          siteId: string | null;
          unitIds: string[] | null;
          leafSources: string[] | null;
          periodStart: Date;
          periodEnd: Date;
          version: number;
          supersedes: string | null;
          document: string;
        }
      | undefined
    > {
      const { rows } = await asQueryable(tx).query<{
        id: string;
        unitId: string | null;
        siteId: string | null;
        unitIds: string[] | null;
        leafSources: string[] | null;
        periodStart: Date;
        periodEnd: Date;
        version: number;
        supersedes: string | null;
        document: string;
      }>(
        `SELECT id, unit_id AS "unitId", site_id AS "siteId", unit_ids::text[] AS "unitIds", leaf_sources::text[] AS "leafSources", ${iso('period_start')} AS "periodStart", ${iso('period_end')} AS "periodEnd", version, supersedes, document FROM mrv_reports WHERE id::text = $1`,
        [id],
      );
      // drizzle's execute hands timestamps back as text.
      return (
        rows[0] && {
          ...rows[0],
          periodStart: new Date(rows[0].periodStart),
          periodEnd: new Date(rows[0].periodEnd),
        }
      );
    },

    /** The report and every version before it, newest first. */
    async versionLine(tx: DbExecutor, id: string): Promise<string[]> {
      const { rows } = await asQueryable(tx).query<{ id: string }>(
        'WITH RECURSIVE line AS (SELECT id, supersedes FROM mrv_reports WHERE id = $1 UNION ALL SELECT r.id, r.supersedes FROM mrv_reports r JOIN line l ON r.id = l.supersedes) SELECT id FROM line',
        [id],
      );
      return rows.map((r) => r.id);
    },

    async list(tx: DbExecutor, unitId?: string): Promise<ReportSummary[]> {
      const { rows } = await asQueryable(tx).query<ReportSummary>(
        `SELECT id, unit_id AS "unitId", site_id AS "siteId", ${iso('period_start')} AS "periodStart", ${iso('period_end')} AS "periodEnd", version, supersedes, reason, ${iso('issued_at')} AS "issuedAt", issued_by AS "issuedBy", merkle_root AS "merkleRoot", leaf_count AS "leafCount"
           FROM mrv_reports WHERE $1::uuid IS NULL OR unit_id = $1 OR $1 = ANY(unit_ids) ORDER BY period_start DESC, unit_id NULLS FIRST, site_id, version DESC`,
        [unitId ?? null],
      );
      return rows.map((r) => ({
        ...r,
        periodStart: new Date(r.periodStart),
        periodEnd: new Date(r.periodEnd),
        issuedAt: new Date(r.issuedAt),
        leafCount: Number(r.leafCount),
      }));
    },
  };
}

export type MrvRepo = ReturnType<typeof createMrvRepo>;
