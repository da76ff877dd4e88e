-- Row security, same rules, much cheaper: PostgreSQL does not inline a SQL function whose body
-- holds a subquery, so policies written as thamani_unit_visible(unit_id) called it for every
-- row, and each call ran thamani_assigned_units() again (~65 µs a row: a kitchen manager's 30-day
-- chart took 2.7 s for 43 k readings, BENCHMARKS.md). Written out, the assigned units become one
-- hashed subplan per query and the role check an inlined current_setting() comparison.
ALTER POLICY readings_read ON readings USING (thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
ALTER POLICY latest_readings_read ON latest_readings USING (thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
ALTER POLICY quarantine_read ON quarantine USING (thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
ALTER POLICY alerts_read ON alerts USING (thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
ALTER POLICY alerts_ack ON alerts USING (thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units()))
  WITH CHECK (thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
DO $archives$
BEGIN
  IF to_regclass('readings_hourly_archive') IS NOT NULL THEN
    ALTER POLICY readings_hourly_archive_read ON readings_hourly_archive USING (thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units()));
    ALTER POLICY readings_daily_archive_read ON readings_daily_archive USING (thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units()));
  END IF;
END
$archives$;
--> statement-breakpoint
CREATE OR REPLACE VIEW scoped_readings WITH (security_barrier) AS
  SELECT * FROM readings WHERE thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units());
--> statement-breakpoint
CREATE OR REPLACE VIEW scoped_readings_hourly WITH (security_barrier) AS
  SELECT * FROM readings_hourly WHERE thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units());
--> statement-breakpoint
CREATE OR REPLACE VIEW scoped_readings_daily WITH (security_barrier) AS
  SELECT * FROM readings_daily WHERE thamani_sees_all() OR unit_id IN (SELECT thamani_assigned_units());
