-- Row-level security that a stolen API database password cannot widen (issue 17 §3,
-- docs/decisions/0009-verified-scope.md). Until now runScoped set `thamani.role` and
-- `thamani.actor_id` with set_config, and the policies believed them: anyone logged in as the API
-- role could `SET thamani.role = 'admin'`. Now the scope of a transaction is a row in a table the
-- API role cannot touch, written only by SECURITY DEFINER functions that verify a credential (a
-- session secret, an API token, an enrolment token) against its stored hash; the policies read
-- only that row. The settings are no longer read by anything.

-- 1. The verified scope: one row per backend, valid only for the transaction that wrote it (a
--    later transaction on the same connection, or another connection, finds no row of its own).
--    Unlogged: a scope never outlives its transaction, so it need not survive a crash.
CREATE UNLOGGED TABLE thamani_scope (
  backend_pid integer PRIMARY KEY,
  xact xid8 NOT NULL,
  actor_id text NOT NULL,
  role text NOT NULL,
  -- How it was verified: session, api-token, enrolment, link, or trusted (the owner's own work).
  via text NOT NULL,
  -- `target_type:target_id` of each audit entry this transaction appended under this actor.
  audited text[] NOT NULL DEFAULT '{}'
);
--> statement-breakpoint
-- 0007's default privileges would give the API role this table: nobody but the owner may touch it.
REVOKE ALL ON thamani_scope FROM PUBLIC, thamani_app, thamani_ingest;
--> statement-breakpoint
-- A function name planted in a schema the definer functions search must not shadow a built-in
-- (PostgreSQL before 15 let every role create objects in `public`).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
--> statement-breakpoint
CREATE FUNCTION thamani_scope_row() RETURNS thamani_scope LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$ SELECT s FROM thamani_scope s WHERE s.backend_pid = pg_backend_pid() AND s.xact = pg_current_xact_id_if_assigned() $f$;
--> statement-breakpoint
CREATE FUNCTION thamani_set_scope(actor text, scope_role text, scope_via text) RETURNS void LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
  INSERT INTO thamani_scope (backend_pid, xact, actor_id, role, via) VALUES (pg_backend_pid(), pg_current_xact_id(), actor, scope_role, scope_via)
  ON CONFLICT (backend_pid) DO UPDATE SET xact = excluded.xact, actor_id = excluded.actor_id, role = excluded.role, via = excluded.via, audited = '{}'
$f$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION thamani_scope_row(), thamani_set_scope(text, text, text) FROM PUBLIC;
--> statement-breakpoint
-- What the policies read. Unverified transactions have no row: role '' sees nothing (fail closed).
CREATE OR REPLACE FUNCTION thamani_current_role() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$ SELECT coalesce((SELECT s.role FROM thamani_scope s WHERE s.backend_pid = pg_backend_pid() AND s.xact = pg_current_xact_id_if_assigned()), '') $f$;
--> statement-breakpoint
CREATE FUNCTION thamani_current_actor() RETURNS text LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$ SELECT coalesce((SELECT s.actor_id FROM thamani_scope s WHERE s.backend_pid = pg_backend_pid() AND s.xact = pg_current_xact_id_if_assigned()), '') $f$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION thamani_assigned_units() RETURNS SETOF uuid LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
  SELECT a.unit_id FROM user_unit_assignments a JOIN units u ON u.id = a.unit_id
  WHERE a.user_id::text = thamani_current_actor()
    AND ((thamani_current_role() = 'kitchen_manager' AND u.kind = 'biodigester')
      OR (thamani_current_role() = 'collector' AND u.kind = 'collection_point'))
$f$;
--> statement-breakpoint
-- Which role may hand out which (auth/permissions.ts covers(); db/verified-scope.test.ts checks
-- this list against it for every pair).
CREATE FUNCTION thamani_role_covers(holder text, wanted text) RETURNS boolean LANGUAGE sql IMMUTABLE
AS $f$
  SELECT (holder, wanted) IN (('admin','admin'), ('admin','technician'), ('admin','kitchen_manager'), ('admin','collector'), ('admin','auditor'),
    ('technician','technician'), ('technician','kitchen_manager'), ('technician','collector'), ('kitchen_manager','kitchen_manager'),
    ('collector','collector'), ('auditor','auditor'))
$f$;
--> statement-breakpoint

-- 2. Entering a scope. Each takes the secret the caller holds, hashes it (SHA-256, as the app
--    stores it) and looks the hash up: a client that knows only what the API role may read
--    (hashes) cannot produce a match. Each returns the role granted, or NULL (no scope).
CREATE FUNCTION thamani_enter_session(secret text) RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  u users%ROWTYPE;
BEGIN
  SELECT usr.* INTO u FROM sessions s JOIN users usr ON usr.id = s.user_id
   WHERE s.id_hash = sha256(convert_to(secret, 'UTF8')) AND s.revoked_at IS NULL AND s.expires_at > now()
     AND NOT usr.disabled AND usr.erased_at IS NULL;
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  PERFORM thamani_set_scope(u.id::text, u.role::text, 'session');
  RETURN u.role::text;
END
$f$;
--> statement-breakpoint
-- A token never acts for more than its owner has now (the same rule as auth/session-service.ts).
CREATE FUNCTION thamani_enter_api_token(secret text) RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  t api_tokens%ROWTYPE;
BEGIN
  SELECT * INTO t FROM api_tokens
   WHERE token_hash = sha256(convert_to(secret, 'UTF8')) AND revoked_at IS NULL AND expires_at > now()
     AND (owner_id IS NULL OR EXISTS (SELECT 1 FROM users o WHERE o.id = owner_id AND NOT o.disabled AND o.erased_at IS NULL AND thamani_role_covers(o.role::text, api_tokens.role::text)));
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  PERFORM thamani_set_scope('token:' || t.id::text, t.role::text, 'api-token');
  RETURN t.role::text;
END
$f$;
--> statement-breakpoint
-- A device's one-time enrolment token: the registry work of /enroll runs as `system`. Only an
-- unused, unexpired token opens it, and the API role can neither create one (below) nor read one.
CREATE FUNCTION thamani_enter_enrolment(secret text) RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  token_id uuid;
BEGIN
  SELECT id INTO token_id FROM enrolment_tokens WHERE token_hash = sha256(convert_to(secret, 'UTF8')) AND used_at IS NULL AND expires_at > now();
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  PERFORM thamani_set_scope('enrolment', 'system', 'enrolment');
  RETURN 'system';
END
$f$;
--> statement-breakpoint
-- The owner's own work (CLI, bootstrap, background jobs): it is trusted anyway (it owns the
-- tables); this only lets the same service code run for it. Never granted to the API role.
CREATE FUNCTION thamani_enter_trusted(actor text, scope_role text) RETURNS text LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$ SELECT thamani_set_scope(actor, scope_role, 'trusted'); SELECT scope_role $f$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION thamani_enter_trusted(text, text) FROM PUBLIC;
--> statement-breakpoint
-- The verified scope, or an error unless its role is one of `allowed`. The owner (or a
-- superuser) without a scope is the trusted `system`: it owns the tables and could write them
-- directly anyway; this lets the CLI and jobs use the same functions.
CREATE FUNCTION thamani_require_scope(allowed text[]) RETURNS thamani_scope LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  s thamani_scope;
BEGIN
  s := thamani_scope_row();
  IF s.backend_pid IS NULL AND EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = session_user AND (r.rolsuper OR r.oid = (SELECT relowner FROM pg_class WHERE oid = 'public.users'::regclass))) THEN
    s := ROW(pg_backend_pid(), pg_current_xact_id(), 'system', 'system', 'trusted', '{}'::text[])::thamani_scope;
  END IF;
  IF s.backend_pid IS NULL OR NOT (s.role = ANY (allowed)) THEN
    RAISE EXCEPTION 'the verified scope (%) may not do this (needs one of %)', coalesce(s.role, 'none'), allowed USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN s;
END
$f$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION thamani_require_scope(text[]) FROM PUBLIC;
--> statement-breakpoint

-- 3. Policies trust only the verified scope. Written as (SELECT f()) so that each query reads the
--    scope once (an InitPlan), not once per row: a definer function is never inlined.
DO $policies$
DECLARE
  p record;
  q text;
  c text;
BEGIN
  FOR p IN SELECT schemaname, tablename, policyname, qual, with_check FROM pg_policies
           WHERE schemaname = 'public' AND 'thamani_app' = ANY (roles)
  LOOP
    q := regexp_replace(regexp_replace(p.qual, 'thamani_sees_all\(\)', '(SELECT thamani_sees_all())', 'g'), 'thamani_current_role\(\)', '(SELECT thamani_current_role())', 'g');
    c := regexp_replace(regexp_replace(p.with_check, 'thamani_sees_all\(\)', '(SELECT thamani_sees_all())', 'g'), 'thamani_current_role\(\)', '(SELECT thamani_current_role())', 'g');
    IF q IS DISTINCT FROM p.qual THEN
      EXECUTE format('ALTER POLICY %I ON %I.%I USING (%s)', p.policyname, p.schemaname, p.tablename, q);
    END IF;
    IF c IS DISTINCT FROM p.with_check THEN
      EXECUTE format('ALTER POLICY %I ON %I.%I WITH CHECK (%s)', p.policyname, p.schemaname, p.tablename, c);
    END IF;
  END LOOP;
END
$policies$;
--> statement-breakpoint
CREATE OR REPLACE FUNCTION thamani_unit_visible(unit uuid) RETURNS boolean LANGUAGE sql STABLE
AS $f$ SELECT (SELECT thamani_sees_all()) OR unit IN (SELECT thamani_assigned_units()) $f$;
--> statement-breakpoint
CREATE OR REPLACE VIEW scoped_readings WITH (security_barrier) AS
  SELECT * FROM readings WHERE (SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units());
--> statement-breakpoint
CREATE OR REPLACE VIEW scoped_readings_hourly WITH (security_barrier) AS
  SELECT * FROM readings_hourly WHERE (SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units());
--> statement-breakpoint
CREATE OR REPLACE VIEW scoped_readings_daily WITH (security_barrier) AS
  SELECT * FROM readings_daily WHERE (SELECT thamani_sees_all()) OR unit_id IN (SELECT thamani_assigned_units());
--> statement-breakpoint

-- 4. People, assignments and credentials: read-only for the API role. What it may still write
--    by plain SQL only ends or marks things (a session's last activity and revocation, a token's
--    last use, an enrolment token spent); sessions are created by the owner after the app has
--    checked the password (the database cannot run scrypt).
REVOKE INSERT, UPDATE, DELETE ON users, user_unit_assignments, api_tokens, user_tokens, sessions, enrolment_tokens FROM thamani_app;
--> statement-breakpoint
GRANT UPDATE (last_seen_at, revoked_at) ON sessions TO thamani_app;
--> statement-breakpoint
GRANT UPDATE (last_used_at) ON api_tokens TO thamani_app;
--> statement-breakpoint
GRANT UPDATE (used_at, used_for) ON enrolment_tokens TO thamani_app;
--> statement-breakpoint

-- 5. Every change to people, assignments and tokens made in a credential's scope carries, in the
--    same transaction, an audit entry by that actor about that target: checked at commit
--    (deferred), so the app may write the entry after the change it describes. The entry is
--    signed by the app (ADR 0004): a forged one fails `thamani audit verify`.
CREATE FUNCTION thamani_note_audit() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  UPDATE thamani_scope SET audited = audited || (NEW.target_type || ':' || coalesce(NEW.target_id, ''))
   WHERE backend_pid = pg_backend_pid() AND xact = pg_current_xact_id_if_assigned() AND actor_id = NEW.actor_id;
  RETURN NULL;
END
$f$;
--> statement-breakpoint
CREATE TRIGGER audit_log_note_scope AFTER INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION thamani_note_audit();
--> statement-breakpoint
CREATE FUNCTION thamani_change_audited() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  s thamani_scope;
  r jsonb;
  accepted text[];
BEGIN
  s := thamani_scope_row();
  IF s.backend_pid IS NULL OR s.via = 'trusted' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN r := to_jsonb(OLD); ELSE r := to_jsonb(NEW); END IF;
  accepted := CASE TG_TABLE_NAME
    WHEN 'users' THEN ARRAY['user:' || (r->>'id')]
    WHEN 'api_tokens' THEN ARRAY['api_token:' || (r->>'id'), 'user:' || coalesce(r->>'owner_id', '')]
    WHEN 'enrolment_tokens' THEN ARRAY['device:' || (r->>'device_id')]
    ELSE ARRAY['user:' || (r->>'user_id')]
  END;
  IF NOT (s.audited && accepted) THEN
    RAISE EXCEPTION '% of % (%) has no audit entry by % in this transaction', TG_OP, TG_TABLE_NAME, accepted[1], s.actor_id USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NULL;
END
$f$;
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER users_audited AFTER INSERT OR UPDATE OR DELETE ON users DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION thamani_change_audited();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER user_unit_assignments_audited AFTER INSERT OR UPDATE OR DELETE ON user_unit_assignments DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION thamani_change_audited();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER user_tokens_audited AFTER INSERT OR DELETE ON user_tokens DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION thamani_change_audited();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER api_tokens_audited AFTER INSERT OR DELETE OR UPDATE OF name, role, token_hash, owner_id, expires_at, revoked_at ON api_tokens DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION thamani_change_audited();
--> statement-breakpoint
CREATE CONSTRAINT TRIGGER enrolment_tokens_audited AFTER INSERT OR DELETE ON enrolment_tokens DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION thamani_change_audited();
--> statement-breakpoint

-- 6. The only ways the API role changes people, assignments and credentials. Each checks the
--    verified scope, never an argument, for who is asking. `users:write` is the admin's alone
--    (auth/permissions.ts); `system` is the owner's trusted work.
CREATE FUNCTION thamani_user_insert(p_username text, p_display_name text, p_email text, p_role user_role) RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  new_id uuid;
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  INSERT INTO users (username, display_name, email, role) VALUES (p_username, p_display_name, p_email, p_role) RETURNING id INTO new_id;
  RETURN new_id;
END
$f$;
--> statement-breakpoint
-- Holds the user's row for the rest of the transaction, so that the `before` the app audits is
-- the state its change replaced (the API role may not lock rows itself: no UPDATE privilege).
CREATE FUNCTION thamani_user_lock(p_id uuid) RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  PERFORM 1 FROM users WHERE id = p_id FOR UPDATE;
  RETURN FOUND;
END
$f$;
--> statement-breakpoint
-- A patch of role, disabled, display_name, email (keys present are set; email may be null).
CREATE FUNCTION thamani_user_update(p_id uuid, patch jsonb) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  UPDATE users SET
    role = CASE WHEN patch ? 'role' THEN (patch->>'role')::user_role ELSE role END,
    disabled = CASE WHEN patch ? 'disabled' THEN (patch->>'disabled')::boolean ELSE disabled END,
    display_name = CASE WHEN patch ? 'displayName' THEN patch->>'displayName' ELSE display_name END,
    email = CASE WHEN patch ? 'email' THEN patch->>'email' ELSE email END,
    updated_at = now()
  WHERE id = p_id;
END
$f$;
--> statement-breakpoint
-- A setup or reset link: voids the user's older unused ones.
CREATE FUNCTION thamani_user_link(p_user uuid, p_purpose user_token_purpose, p_token_hash bytea, p_expires timestamptz) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  UPDATE user_tokens SET used_at = now() WHERE user_id = p_user AND used_at IS NULL;
  INSERT INTO user_tokens (token_hash, user_id, purpose, created_at, expires_at) VALUES (p_token_hash, p_user, p_purpose, now(), p_expires);
END
$f$;
--> statement-breakpoint
-- Spends a link: the link's secret is the credential (its hash is what is stored), so this opens
-- a `link` scope for the link's user, in which the password change must be audited.
CREATE FUNCTION thamani_complete_link(secret text, p_password_hash text) RETURNS TABLE (user_id uuid, purpose user_token_purpose) LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  t user_tokens%ROWTYPE;
  u users%ROWTYPE;
BEGIN
  UPDATE user_tokens SET used_at = now() WHERE token_hash = sha256(convert_to(secret, 'UTF8')) AND used_at IS NULL AND expires_at > now() RETURNING * INTO t;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  SELECT * INTO u FROM users WHERE id = t.user_id;
  IF u.disabled OR u.erased_at IS NOT NULL THEN
    RETURN;
  END IF;
  PERFORM thamani_set_scope(u.id::text, '', 'link');
  UPDATE users SET password_hash = p_password_hash, password_changed_at = now(), updated_at = now() WHERE id = u.id;
  UPDATE sessions SET revoked_at = now() WHERE sessions.user_id = u.id AND revoked_at IS NULL;
  RETURN QUERY SELECT u.id, t.purpose;
END
$f$;
--> statement-breakpoint
CREATE FUNCTION thamani_user_set_units(p_user uuid, p_units uuid[]) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  DELETE FROM user_unit_assignments WHERE user_id = p_user;
  INSERT INTO user_unit_assignments (user_id, unit_id) SELECT p_user, u FROM (SELECT DISTINCT unnest(p_units) AS u) x;
END
$f$;
--> statement-breakpoint
-- Right to erasure: personal fields, sign-in metadata and unused links go; the id stays.
CREATE FUNCTION thamani_user_erase(p_user uuid) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  UPDATE users SET username = 'erased-' || p_user::text, display_name = 'erased user', email = NULL, password_hash = NULL, disabled = true, erased_at = now(), updated_at = now() WHERE id = p_user;
  UPDATE sessions SET revoked_at = coalesce(revoked_at, now()), ip = NULL, user_agent = NULL WHERE user_id = p_user;
  UPDATE user_tokens SET used_at = now() WHERE user_id = p_user AND used_at IS NULL;
END
$f$;
--> statement-breakpoint
-- A token acts for the verified actor's user (a session's user, or the owner of the token in
-- use; none for the owner's trusted work unless it names a user) and never for more than that
-- user and the scope's role have.
CREATE FUNCTION thamani_api_token_insert(p_name text, p_role user_role, p_token_hash bytea, p_expires timestamptz) RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  s thamani_scope;
  owner_user users%ROWTYPE;
  owner uuid;
  new_id uuid;
BEGIN
  s := thamani_require_scope(ARRAY['admin', 'technician', 'kitchen_manager', 'collector', 'auditor', 'system']);
  IF s.actor_id ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    owner := s.actor_id::uuid;
  ELSIF s.actor_id LIKE 'token:%' THEN
    SELECT owner_id INTO owner FROM api_tokens WHERE id::text = substr(s.actor_id, 7);
  END IF;
  IF owner IS NOT NULL THEN
    SELECT * INTO owner_user FROM users WHERE id = owner;
    IF NOT FOUND OR owner_user.disabled OR owner_user.erased_at IS NOT NULL OR NOT thamani_role_covers(owner_user.role::text, p_role::text) THEN
      RAISE EXCEPTION 'the token owner cannot hand out %', p_role USING ERRCODE = 'insufficient_privilege';
    END IF;
  END IF;
  IF s.role <> 'system' AND NOT thamani_role_covers(s.role, p_role::text) THEN
    RAISE EXCEPTION 'a % cannot hand out %', s.role, p_role USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF s.via <> 'trusted' AND s.role <> 'admin' THEN
    RAISE EXCEPTION 'only an admin makes API tokens through the API' USING ERRCODE = 'insufficient_privilege';
  END IF;
  INSERT INTO api_tokens (name, role, token_hash, created_by, owner_id, expires_at) VALUES (p_name, p_role, p_token_hash, s.actor_id, owner, p_expires) RETURNING id INTO new_id;
  RETURN new_id;
END
$f$;
--> statement-breakpoint
CREATE FUNCTION thamani_api_tokens_revoke(p_ids uuid[]) RETURNS SETOF uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  RETURN QUERY UPDATE api_tokens SET revoked_at = now() WHERE id = ANY (p_ids) AND revoked_at IS NULL RETURNING id;
END
$f$;
--> statement-breakpoint
-- Enrolment tokens (enrolment:create: admin and technician).
CREATE FUNCTION thamani_enrolment_token_insert(p_device text, p_token_hash bytea, p_expires timestamptz) RETURNS uuid LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  s thamani_scope;
  new_id uuid;
BEGIN
  s := thamani_require_scope(ARRAY['admin', 'technician', 'system']);
  INSERT INTO enrolment_tokens (device_id, token_hash, expires_at, created_by) VALUES (p_device, p_token_hash, p_expires, s.actor_id) RETURNING id INTO new_id;
  RETURN new_id;
END
$f$;
--> statement-breakpoint
DO $grants$
DECLARE
  f text;
BEGIN
  FOREACH f IN ARRAY ARRAY['thamani_enter_session(text)', 'thamani_enter_api_token(text)', 'thamani_enter_enrolment(text)',
    'thamani_user_insert(text, text, text, user_role)', 'thamani_user_lock(uuid)', 'thamani_user_update(uuid, jsonb)', 'thamani_user_link(uuid, user_token_purpose, bytea, timestamptz)',
    'thamani_complete_link(text, text)', 'thamani_user_set_units(uuid, uuid[])', 'thamani_user_erase(uuid)',
    'thamani_api_token_insert(text, user_role, bytea, timestamptz)', 'thamani_api_tokens_revoke(uuid[])', 'thamani_enrolment_token_insert(text, bytea, timestamptz)']
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO thamani_app', f);
  END LOOP;
END
$grants$;
