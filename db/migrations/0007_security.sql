-- Security model in the database (docs/security-model.md): roles and grants, row-level security
-- for what each user may see, and the append-only audit store.

-- 1. Group roles (cluster-wide, so created only when missing). Neither may log in; the API's
--    LOGIN role (thamani_api, app/db-roles.ts) and ingest's are members.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'thamani_app') THEN
    CREATE ROLE thamani_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'thamani_ingest') THEN
    CREATE ROLE thamani_ingest NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END
$roles$;
--> statement-breakpoint
GRANT USAGE ON SCHEMA public TO thamani_app, thamani_ingest;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON sites, units, devices TO thamani_app;
--> statement-breakpoint
GRANT SELECT ON readings TO thamani_app;
--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE ON users, sessions, api_tokens, user_tokens TO thamani_app;
--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON user_unit_assignments TO thamani_app;
--> statement-breakpoint
-- The audit store: append and read, nothing else, for the application.
GRANT SELECT, INSERT ON audit_log TO thamani_app;
--> statement-breakpoint
GRANT SELECT ON audit_anchor TO thamani_app;
--> statement-breakpoint
-- Ingest appends readings; it never updates or deletes them.
GRANT SELECT, INSERT ON readings TO thamani_ingest;
--> statement-breakpoint
GRANT SELECT ON sites, units, devices TO thamani_ingest;
--> statement-breakpoint
GRANT INSERT, SELECT ON audit_log TO thamani_ingest;
--> statement-breakpoint
-- Tables later migrations create (certificates, quarantine, alerts...) are usable by the API
-- without DELETE; a migration that needs DELETE or stricter rules grants or revokes explicitly.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE ON TABLES TO thamani_app;
--> statement-breakpoint
-- The same for tables that migrations ordered before this one created (whatever order the
-- features merge in). Never partitions (their parent's row security does not apply when they
-- are queried directly), never the append-only or ingest-only tables.
DO $existing$
DECLARE
  t text;
BEGIN
  FOR t IN
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
      AND c.relname NOT IN ('audit_log', 'audit_anchor', 'readings', '__drizzle_migrations')
  LOOP
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO thamani_app', t);
  END LOOP;
END
$existing$;
--> statement-breakpoint
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO thamani_app;
--> statement-breakpoint

-- 2. Scope. runScoped (db/scoped.ts) sets thamani.role and thamani.actor_id per transaction.
--    Unset or unknown role: nothing is visible (fail closed).
CREATE FUNCTION thamani_current_role() RETURNS text LANGUAGE sql STABLE
AS $f$ SELECT coalesce(current_setting('thamani.role', true), '') $f$;
--> statement-breakpoint
-- Roles whose work spans the whole fleet.
CREATE FUNCTION thamani_sees_all() RETURNS boolean LANGUAGE sql STABLE
AS $f$ SELECT thamani_current_role() IN ('admin', 'technician', 'system') $f$;
--> statement-breakpoint
-- Units assigned to the calling kitchen manager (biodigesters) or collector (collection points).
-- SECURITY DEFINER: reads units without recursing into units' own policy.
CREATE FUNCTION thamani_assigned_units() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
  SELECT a.unit_id FROM user_unit_assignments a JOIN units u ON u.id = a.unit_id
  WHERE a.user_id::text = current_setting('thamani.actor_id', true)
    AND ((thamani_current_role() = 'kitchen_manager' AND u.kind = 'biodigester')
      OR (thamani_current_role() = 'collector' AND u.kind = 'collection_point'))
$f$;
--> statement-breakpoint
CREATE FUNCTION thamani_unit_visible(unit uuid) RETURNS boolean LANGUAGE sql STABLE
AS $f$ SELECT thamani_sees_all() OR unit IN (SELECT thamani_assigned_units()) $f$;
--> statement-breakpoint
CREATE FUNCTION thamani_assigned_sites() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$ SELECT DISTINCT u.site_id FROM units u WHERE u.id IN (SELECT thamani_assigned_units()) $f$;
--> statement-breakpoint
ALTER TABLE sites ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE units ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE devices ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
-- The auditor sees the inventory (sites, units, devices) behind the certificates, not readings.
CREATE POLICY sites_read ON sites FOR SELECT TO thamani_app
  USING (thamani_sees_all() OR thamani_current_role() = 'auditor' OR id IN (SELECT thamani_assigned_sites()));
--> statement-breakpoint
CREATE POLICY sites_write ON sites FOR ALL TO thamani_app USING (thamani_sees_all()) WITH CHECK (thamani_sees_all());
--> statement-breakpoint
CREATE POLICY units_read ON units FOR SELECT TO thamani_app
  USING (thamani_sees_all() OR thamani_current_role() = 'auditor' OR id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
CREATE POLICY units_write ON units FOR ALL TO thamani_app USING (thamani_sees_all()) WITH CHECK (thamani_sees_all());
--> statement-breakpoint
CREATE POLICY devices_read ON devices FOR SELECT TO thamani_app
  USING (thamani_sees_all() OR thamani_current_role() = 'auditor' OR unit_id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
CREATE POLICY devices_write ON devices FOR ALL TO thamani_app USING (thamani_sees_all()) WITH CHECK (thamani_sees_all());
--> statement-breakpoint
CREATE POLICY readings_ingest ON readings FOR ALL TO thamani_ingest USING (true) WITH CHECK (true);
--> statement-breakpoint
CREATE POLICY readings_read ON readings FOR SELECT TO thamani_app USING (thamani_unit_visible(unit_id));
--> statement-breakpoint
-- TimescaleDB may refuse row security on a hypertable with compression: then the application
-- loses direct access to readings (fail closed) and reads scoped_readings below instead.
DO $readings_rls$
BEGIN
  ALTER TABLE readings ENABLE ROW LEVEL SECURITY;
EXCEPTION WHEN feature_not_supported OR wrong_object_type OR object_not_in_prerequisite_state THEN
  RAISE NOTICE 'row-level security unavailable on readings (%); the API reads scoped_readings', SQLERRM;
  REVOKE SELECT ON readings FROM thamani_app;
END
$readings_rls$;
--> statement-breakpoint
CREATE VIEW scoped_readings WITH (security_barrier) AS
  SELECT * FROM readings WHERE thamani_unit_visible(unit_id);
--> statement-breakpoint
GRANT SELECT ON scoped_readings TO thamani_app;
--> statement-breakpoint
-- Rollups. Plain PostgreSQL: readings_hourly/daily are views, made security_invoker so the
-- policies on readings apply through them. TimescaleDB continuous aggregates cannot carry row
-- security: the application loses direct access and reads the scoped_* security-barrier views.
DO $rollups$
DECLARE
  is_cagg boolean := false;
BEGIN
  -- Continuous aggregates are views too (pg_views lists them), so ask TimescaleDB itself.
  IF to_regclass('timescaledb_information.continuous_aggregates') IS NOT NULL THEN
    EXECUTE $q$SELECT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_name = 'readings_hourly')$q$ INTO is_cagg;
  END IF;
  IF NOT is_cagg THEN
    ALTER VIEW readings_hourly SET (security_invoker = on);
    ALTER VIEW readings_daily SET (security_invoker = on);
    GRANT SELECT ON readings_hourly, readings_daily TO thamani_app;
  ELSE
    REVOKE ALL ON readings_hourly, readings_daily FROM thamani_app;
  END IF;
END
$rollups$;
--> statement-breakpoint
CREATE VIEW scoped_readings_hourly WITH (security_barrier) AS
  SELECT * FROM readings_hourly WHERE thamani_unit_visible(unit_id);
--> statement-breakpoint
CREATE VIEW scoped_readings_daily WITH (security_barrier) AS
  SELECT * FROM readings_daily WHERE thamani_unit_visible(unit_id);
--> statement-breakpoint
GRANT SELECT ON scoped_readings_hourly, scoped_readings_daily TO thamani_app;
--> statement-breakpoint

-- 3. The audit store is append-only, for everyone including the owner: UPDATE and TRUNCATE are
--    always refused; DELETE only inside the retention job (thamani.audit_retention = on) and
--    only for entries older than 7 years. Corrections are new entries.
CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF TG_OP = 'DELETE' AND current_setting('thamani.audit_retention', true) = 'on' THEN
    IF OLD.at < now() - interval '7 years' THEN
      RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_log entry % is younger than 7 years and is retained', OLD.id USING ERRCODE = 'insufficient_privilege';
  END IF;
  RAISE EXCEPTION 'audit_log is append-only: % refused (corrections are new entries)', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$f$;
--> statement-breakpoint
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
--> statement-breakpoint
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();
--> statement-breakpoint
-- The retention job: removes entries older than `keep` (never less than 7 years) and moves the
-- chain's anchor to the last removed entry's hash, so verification starts there.
CREATE FUNCTION audit_log_apply_retention(keep interval DEFAULT interval '7 years') RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
  last_row audit_log%ROWTYPE;
  removed bigint;
BEGIN
  IF keep < interval '7 years' THEN
    RAISE EXCEPTION 'audit retention is at least 7 years (asked for %)', keep;
  END IF;
  SELECT * INTO last_row FROM audit_log WHERE at < now() - keep ORDER BY id DESC LIMIT 1;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  PERFORM set_config('thamani.audit_retention', 'on', true);
  DELETE FROM audit_log WHERE id <= last_row.id;
  GET DIAGNOSTICS removed = ROW_COUNT;
  PERFORM set_config('thamani.audit_retention', 'off', true);
  INSERT INTO audit_anchor (id, through_id, last_hash, at) VALUES (true, last_row.id::text, last_row.hash, now())
    ON CONFLICT (id) DO UPDATE SET through_id = excluded.through_id, last_hash = excluded.last_hash, at = excluded.at;
  RETURN removed;
END
$f$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION audit_log_apply_retention(interval) FROM PUBLIC;
