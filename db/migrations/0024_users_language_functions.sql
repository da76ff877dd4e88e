-- The user's language (migration 0023): an administrator sets it with the other fields of a
-- user; a signed-in user sets their own, and only their own, from their session. Both changes are
-- audited in the same transaction (users_audited, migration 0019).
CREATE OR REPLACE FUNCTION thamani_user_update(p_id uuid, patch jsonb) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  UPDATE users SET
    role = CASE WHEN patch ? 'role' THEN (patch->>'role')::user_role ELSE role END,
    disabled = CASE WHEN patch ? 'disabled' THEN (patch->>'disabled')::boolean ELSE disabled END,
    display_name = CASE WHEN patch ? 'displayName' THEN patch->>'displayName' ELSE display_name END,
    email = CASE WHEN patch ? 'email' THEN patch->>'email' ELSE email END,
    language = CASE WHEN patch ? 'language' THEN patch->>'language' ELSE language END,
    updated_at = now()
  WHERE id = p_id;
END
$f$;
--> statement-breakpoint
-- Who is changed is the verified scope's actor (a session's user), never an argument.
CREATE FUNCTION thamani_user_set_own_language(p_language text) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  s thamani_scope;
BEGIN
  s := thamani_require_scope(ARRAY['admin', 'technician', 'kitchen_manager', 'collector', 'auditor']);
  IF s.via <> 'session' THEN
    RAISE EXCEPTION 'only a signed-in user sets their own language' USING ERRCODE = 'insufficient_privilege';
  END IF;
  UPDATE users SET language = p_language, updated_at = now() WHERE id::text = s.actor_id;
END
$f$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION thamani_user_set_own_language(text) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION thamani_user_set_own_language(text) TO thamani_app;
