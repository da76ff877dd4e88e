-- MRV (mrv/, docs/mrv.md). Issued reports and calibration records are append-only: a trigger
-- refuses UPDATE, DELETE and TRUNCATE whoever asks (the owner included), and the API's group has
-- no UPDATE or DELETE grant either. A correction is a new row that supersedes the old one.
CREATE FUNCTION mrv_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
--> statement-breakpoint
ALTER TABLE mrv_reports ADD CONSTRAINT mrv_reports_supersedes_fk FOREIGN KEY (supersedes) REFERENCES mrv_reports (id) ON DELETE RESTRICT;
--> statement-breakpoint
CREATE TRIGGER mrv_reports_append_only BEFORE UPDATE OR DELETE ON mrv_reports FOR EACH ROW EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
CREATE TRIGGER mrv_reports_no_truncate BEFORE TRUNCATE ON mrv_reports FOR EACH STATEMENT EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
CREATE TRIGGER mrv_calibrations_append_only BEFORE UPDATE OR DELETE ON mrv_calibrations FOR EACH ROW EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
CREATE TRIGGER mrv_calibrations_no_truncate BEFORE TRUNCATE ON mrv_calibrations FOR EACH STATEMENT EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
-- The raw readings behind issued reports, kept for at least 7 years whatever
-- READINGS_RAW_RETENTION_DAYS drops from `readings` (an issued report must stay recomputable).
-- Plain table on both database paths; device_id in "C" collation so that the primary key's order
-- is the leaves' byte order. archived_by: the report that first archived the row, so a report's
-- leaves are the rows archived by it or by the versions before it. Same metric columns as
-- readings (devices/metrics.ts): a metric added there needs a column here too.
CREATE TABLE mrv_readings_archive (
  device_id text COLLATE "C" NOT NULL,
  ts timestamptz NOT NULL,
  unit_id uuid NOT NULL,
  seq bigint NOT NULL,
  temperature_c double precision,
  ph double precision,
  biogas_pressure_kpa double precision,
  methane_pct double precision,
  gas_flow_lpm double precision,
  slurry_level_pct double precision,
  h2s_ppm double precision,
  fill_level_pct double precision,
  weight_kg double precision,
  lid_open double precision,
  battery_v double precision,
  rssi_dbm double precision,
  archived_by uuid NOT NULL,
  CONSTRAINT mrv_readings_archive_pk PRIMARY KEY (device_id, ts)
);
--> statement-breakpoint
-- A report's leaves: one unit, in leaf order, read in keyset batches without a sort.
CREATE INDEX mrv_readings_archive_leaves_idx ON mrv_readings_archive (unit_id, device_id, ts);
--> statement-breakpoint
CREATE TRIGGER mrv_readings_archive_append_only BEFORE UPDATE OR DELETE ON mrv_readings_archive FOR EACH ROW EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
CREATE TRIGGER mrv_readings_archive_no_truncate BEFORE TRUNCATE ON mrv_readings_archive FOR EACH STATEMENT EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
REVOKE ALL ON mrv_reports, mrv_calibrations, mrv_readings_archive, mrv_site_parameters FROM thamani_app;
--> statement-breakpoint
GRANT SELECT, INSERT ON mrv_reports, mrv_calibrations, mrv_readings_archive TO thamani_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE ON mrv_site_parameters TO thamani_app;
--> statement-breakpoint
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'thamani_readonly') THEN
    GRANT SELECT ON mrv_reports TO thamani_readonly;
  END IF;
END
$$;
