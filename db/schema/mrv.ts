import { sql } from 'drizzle-orm';
import {
  bigint,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  unique,
  uuid,
} from 'drizzle-orm/pg-core';
import { devices, sites, units } from './core.ts';

/**
 * Issued MRV reports (mrv/): append-only, a trigger refuses UPDATE, DELETE and TRUNCATE (0019).
 * A correction is a new version that names the one it supersedes and why. `document` is the
 * signed JSON exactly as issued (text, not jsonb, so that not a byte of it changes).
 */
export const mrvReports = pgTable(
  'mrv_reports',
  {
    id: uuid('id').primaryKey(),
    // A digester report names its unit; a site report (issue 20) its site and, frozen at issue,
    // every digester it covers (a verifier sees it only when scoped to all of them, 0036).
    unitId: uuid('unit_id').references(() => units.id, { onDelete: 'restrict' }),
    siteId: uuid('site_id').references(() => sites.id, { onDelete: 'restrict' }),
    unitIds: uuid('unit_ids').array(),
    // The reports whose archived rows are this report's leaves (with the unit and period filter);
    // NULL on reports issued before it existed, whose leaves are their version line's rows.
    leafSources: uuid('leaf_sources').array(),
    periodStart: timestamp('period_start', { withTimezone: true }).notNull(),
    periodEnd: timestamp('period_end', { withTimezone: true }).notNull(),
    version: integer('version').notNull(),
    supersedes: uuid('supersedes'),
    reason: text('reason'),
    issuedAt: timestamp('issued_at', { withTimezone: true }).notNull(),
    issuedBy: text('issued_by').notNull(),
    merkleRoot: text('merkle_root').notNull(),
    leafCount: bigint('leaf_count', { mode: 'number' }).notNull(),
    keyId: text('key_id').notNull(),
    document: text('document').notNull(),
  },
  (t) => [
    unique('mrv_reports_version_uq').on(t.unitId, t.periodStart, t.version),
    unique('mrv_reports_site_version_uq').on(t.siteId, t.periodStart, t.version),
    check(
      'mrv_reports_subject',
      sql`(${t.unitId} IS NULL) = (${t.siteId} IS NOT NULL) AND (${t.siteId} IS NULL) = (${t.unitIds} IS NULL)`,
    ),
    // A report is superseded at most once: versions form one line.
    unique('mrv_reports_supersedes_uq').on(t.supersedes),
    check('mrv_reports_period', sql`${t.periodEnd} > ${t.periodStart}`),
    check(
      'mrv_reports_correction',
      sql`(${t.version} = 1) = (${t.supersedes} IS NULL) AND (${t.supersedes} IS NULL) = (${t.reason} IS NULL)`,
    ),
    index('mrv_reports_period_idx').on(t.periodStart, t.periodEnd),
  ],
);

/**
 * Calibration records of a device's sensor for one metric: valid from/to, passed or failed
 * (as-found out of tolerance). Append-only like the reports; a report lists those of its period.
 */
export const mrvCalibrations = pgTable(
  'mrv_calibrations',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    deviceId: text('device_id')
      .notNull()
      .references(() => devices.id, { onDelete: 'restrict' }),
    metric: text('metric').notNull(),
    validFrom: timestamp('valid_from', { withTimezone: true }).notNull(),
    validTo: timestamp('valid_to', { withTimezone: true }),
    result: text('result', { enum: ['pass', 'fail'] }).notNull(),
    reference: text('reference').notNull(),
    recordedBy: text('recorded_by').notNull(),
    recordedAt: timestamp('recorded_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('mrv_calibrations_device_idx').on(t.deviceId, t.metric, t.validFrom),
    check('mrv_calibrations_window', sql`${t.validTo} IS NULL OR ${t.validTo} > ${t.validFrom}`),
  ],
);

/** A site's overrides of the MRV parameters (mrv/mrv-params.ts); absent keys take the defaults. */
export const mrvSiteParameters = pgTable('mrv_site_parameters', {
  siteId: uuid('site_id')
    .primaryKey()
    .references(() => sites.id, { onDelete: 'restrict' }),
  params: jsonb('params').notNull(),
  updatedBy: text('updated_by').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

export type MrvReportRow = typeof mrvReports.$inferSelect;
