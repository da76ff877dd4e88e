-- Field records (field/, issue 19): feedings of biodigesters, collections of collection points.
-- Scope like every unit-scoped table (0007, 0011, 0019): a row exists for a caller only when its
-- unit does (`(SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units())`, read
-- once per query). The author is the verified scope's actor, never a name the app passes.
ALTER TABLE feedings ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE collections ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY feedings_read ON feedings FOR SELECT TO thamani_app
  USING ((SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
CREATE POLICY feedings_record ON feedings FOR INSERT TO thamani_app
  WITH CHECK (((SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units()))
    AND recorded_by = (SELECT thamani_current_actor()));
--> statement-breakpoint
-- A correction or a void: only the author's own, still-standing entry, within 7 days of recording
-- (field/field-fns.ts CORRECTION_WINDOW_DAYS).
CREATE POLICY feedings_correct ON feedings FOR UPDATE TO thamani_app
  USING (((SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units()))
    AND recorded_by = (SELECT thamani_current_actor()) AND voided_at IS NULL
    AND recorded_at > now() - interval '7 days')
  WITH CHECK (((SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units()))
    AND recorded_by = (SELECT thamani_current_actor()));
--> statement-breakpoint
CREATE POLICY collections_read ON collections FOR SELECT TO thamani_app
  USING ((SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units()));
--> statement-breakpoint
CREATE POLICY collections_record ON collections FOR INSERT TO thamani_app
  WITH CHECK (((SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units()))
    AND collected_by = (SELECT thamani_current_actor()));
--> statement-breakpoint
-- 0007's default privileges gave SELECT, INSERT, UPDATE. Collections are append-only for the API;
-- a feeding's unit, author and recording time never change, only what a correction may.
REVOKE UPDATE, DELETE, TRUNCATE ON feedings, collections FROM thamani_app;
--> statement-breakpoint
GRANT UPDATE (fed_at, kg, note, corrected_at, voided_at) ON feedings TO thamani_app;
--> statement-breakpoint
-- Times a person could not have meant: more than 5 minutes ahead of the database's clock (a
-- phone's clock may be a little fast), or before the unit existed. Checked here too so that raw
-- SQL on the API role cannot store what the API refuses (field/field-fns.ts CLOCK_SKEW_MS).
CREATE FUNCTION field_check_time() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  at timestamptz;
  born timestamptz;
BEGIN
  -- Separate statements: plpgsql plans each on first use, and each table has only one of the columns.
  IF TG_TABLE_NAME = 'feedings' THEN
    at := NEW.fed_at;
  ELSE
    at := NEW.collected_at;
  END IF;
  IF at > now() + interval '5 minutes' THEN
    RAISE EXCEPTION '% at % is in the future', TG_TABLE_NAME, at USING ERRCODE = 'check_violation';
  END IF;
  SELECT created_at INTO born FROM units WHERE id = NEW.unit_id;
  IF born IS NOT NULL AND at < born THEN
    RAISE EXCEPTION '% at % is before the unit existed (%)', TG_TABLE_NAME, at, born USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$f$;
--> statement-breakpoint
CREATE TRIGGER feedings_time BEFORE INSERT OR UPDATE OF fed_at ON feedings FOR EACH ROW EXECUTE FUNCTION field_check_time();
--> statement-breakpoint
CREATE TRIGGER collections_time BEFORE INSERT ON collections FOR EACH ROW EXECUTE FUNCTION field_check_time();
--> statement-breakpoint
-- Never silently (ADR 0009 §"Audited in the same transaction"): a feeding recorded, corrected or
-- voided, or a collection recorded, in a credential's scope commits only with an audit entry by
-- that actor about it (`feeding:<id>`, `collection:<id>`) in the same transaction; the entry
-- holds the old and new values, signed by the app (ADR 0004).
CREATE FUNCTION field_change_audited() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  s thamani_scope;
  target text;
BEGIN
  s := thamani_scope_row();
  IF s.backend_pid IS NULL OR s.via = 'trusted' THEN
    RETURN NULL;
  END IF;
  target := CASE TG_TABLE_NAME WHEN 'feedings' THEN 'feeding:' ELSE 'collection:' END || NEW.id::text;
  IF NOT (target = ANY (s.audited)) THEN
    RAISE EXCEPTION '% of % (%) has no audit entry by % in this transaction', TG_OP, TG_TABLE_NAME, target, s.actor_id USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END
$f$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION field_change_audited(), field_check_time() FROM PUBLIC;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER feedings_audited AFTER INSERT OR UPDATE ON feedings DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION field_change_audited();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER collections_audited AFTER INSERT ON collections DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION field_change_audited();