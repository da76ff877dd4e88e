-- Row security for what the dashboards read (docs/security-model.md): the latest values,
-- quarantine and alerts are scoped like readings; alerts can only be acknowledged through the
-- API (three columns), never opened, closed or deleted by it; rules are edited by fleet roles.
ALTER TABLE latest_readings ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
REVOKE INSERT, UPDATE, DELETE ON latest_readings FROM thamani_app;
--> statement-breakpoint
CREATE POLICY latest_readings_read ON latest_readings FOR SELECT TO thamani_app USING (thamani_unit_visible(unit_id));
--> statement-breakpoint
ALTER TABLE quarantine ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY quarantine_read ON quarantine FOR SELECT TO thamani_app USING (thamani_unit_visible(unit_id));
--> statement-breakpoint
-- Replay (a technician's decision) marks the item; nobody else writes it through the API.
CREATE POLICY quarantine_replay ON quarantine FOR UPDATE TO thamani_app USING (thamani_sees_all()) WITH CHECK (thamani_sees_all());
--> statement-breakpoint
REVOKE INSERT, DELETE ON quarantine FROM thamani_app;
--> statement-breakpoint
ALTER TABLE alerts ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
REVOKE INSERT, UPDATE, DELETE ON alerts FROM thamani_app;
--> statement-breakpoint
GRANT SELECT, UPDATE (acknowledged_at, acknowledged_by, ack_note) ON alerts TO thamani_app;
--> statement-breakpoint
CREATE POLICY alerts_read ON alerts FOR SELECT TO thamani_app USING (thamani_unit_visible(unit_id));
--> statement-breakpoint
CREATE POLICY alerts_ack ON alerts FOR UPDATE TO thamani_app USING (thamani_unit_visible(unit_id)) WITH CHECK (thamani_unit_visible(unit_id));
--> statement-breakpoint
ALTER TABLE alert_rules ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
REVOKE INSERT, DELETE ON alert_rules FROM thamani_app;
--> statement-breakpoint
CREATE POLICY alert_rules_read ON alert_rules FOR SELECT TO thamani_app USING (true);
--> statement-breakpoint
CREATE POLICY alert_rules_write ON alert_rules FOR UPDATE TO thamani_app USING (thamani_sees_all()) WITH CHECK (thamani_sees_all());
--> statement-breakpoint
-- Deliveries are the gateway's business (owner role); the API neither reads nor writes them.
REVOKE ALL ON alert_notifications FROM thamani_app;
--> statement-breakpoint

-- A read-only group for analytics tools (Grafana, dashboards/grafana/): the whole fleet's
-- telemetry, rollups, latest values, inventory and alerts; nothing else (no users, sessions,
-- audit, keys or certificates). An operator grants it to a LOGIN role of their own
-- (docs/operations.md, "Grafana").
DO $readonly$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'thamani_readonly') THEN
    CREATE ROLE thamani_readonly NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END
$readonly$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA public TO thamani_readonly;
--> statement-breakpoint
GRANT SELECT ON sites, units, devices, readings, latest_readings, alerts, alert_rules, readings_hourly, readings_daily TO thamani_readonly;
--> statement-breakpoint
DO $readonly_archives$
BEGIN
  IF to_regclass('readings_hourly_archive') IS NOT NULL THEN
    GRANT SELECT ON readings_hourly_archive, readings_daily_archive TO thamani_readonly;
    CREATE POLICY readings_hourly_archive_readonly ON readings_hourly_archive FOR SELECT TO thamani_readonly USING (true);
    CREATE POLICY readings_daily_archive_readonly ON readings_daily_archive FOR SELECT TO thamani_readonly USING (true);
  END IF;
END
$readonly_archives$;
--> statement-breakpoint
CREATE POLICY sites_readonly ON sites FOR SELECT TO thamani_readonly USING (true);
--> statement-breakpoint
CREATE POLICY units_readonly ON units FOR SELECT TO thamani_readonly USING (true);
--> statement-breakpoint
CREATE POLICY devices_readonly ON devices FOR SELECT TO thamani_readonly USING (true);
--> statement-breakpoint
CREATE POLICY readings_readonly ON readings FOR SELECT TO thamani_readonly USING (true);
--> statement-breakpoint
CREATE POLICY latest_readings_readonly ON latest_readings FOR SELECT TO thamani_readonly USING (true);
--> statement-breakpoint
CREATE POLICY alerts_readonly ON alerts FOR SELECT TO thamani_readonly USING (true);
--> statement-breakpoint
CREATE POLICY alert_rules_readonly ON alert_rules FOR SELECT TO thamani_readonly USING (true);
