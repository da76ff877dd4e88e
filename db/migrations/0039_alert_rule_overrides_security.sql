-- Per-unit alert thresholds (alert_rule_overrides, docs/operations.md "Alert rules"): scoped in
-- the database like the rules and alerts they belong to (docs/decisions/0007-data-access.md,
-- 0009-verified-scope.md). Whoever may see the unit reads its overrides (a kitchen manager or
-- collector sees the thresholds their own units are judged by); only a verified scope whose role
-- sees the whole fleet (admin, technician: `alerts:configure`; the system) writes or removes one,
-- whatever the application above asks.
ALTER TABLE alert_rule_overrides ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
REVOKE TRUNCATE ON alert_rule_overrides FROM thamani_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON alert_rule_overrides TO thamani_app;
--> statement-breakpoint
-- Written out like 0011's policies (a helper called per row is not inlined).
CREATE POLICY alert_rule_overrides_read ON alert_rule_overrides FOR SELECT TO thamani_app
  USING ((SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
CREATE POLICY alert_rule_overrides_insert ON alert_rule_overrides FOR INSERT TO thamani_app
  WITH CHECK ((SELECT thamani_sees_all()));
--> statement-breakpoint
CREATE POLICY alert_rule_overrides_update ON alert_rule_overrides FOR UPDATE TO thamani_app
  USING ((SELECT thamani_sees_all())) WITH CHECK ((SELECT thamani_sees_all()));
--> statement-breakpoint
CREATE POLICY alert_rule_overrides_delete ON alert_rule_overrides FOR DELETE TO thamani_app
  USING ((SELECT thamani_sees_all()));
--> statement-breakpoint
-- Grafana's read-only group sees what the dashboards colour by (0010's thamani_readonly).
GRANT SELECT ON alert_rule_overrides TO thamani_readonly;
--> statement-breakpoint
CREATE POLICY alert_rule_overrides_readonly ON alert_rule_overrides FOR SELECT TO thamani_readonly USING (true);