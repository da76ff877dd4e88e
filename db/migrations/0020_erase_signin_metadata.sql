-- Erasure under the verified scope (issues 17 §3 and §4 together): 0019 made the erase a
-- definer function, since the API role may no longer write `users` or delete `sessions`; 0017
-- (erasure) deleted the person's sessions and named them "erased user #<number>". The function
-- now does both: sessions are deleted, not only revoked and stripped, and the display name is the
-- pseudonym that actor_display_name() shows. The rest of the sign-in metadata (request metadata of
-- the audit log, the throttle row) is deleted by the app in the same transaction, which the API
-- role may do (0017).
CREATE OR REPLACE FUNCTION thamani_user_erase(p_user uuid) RETURNS void LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  UPDATE users SET username = 'erased-' || p_user::text, display_name = 'erased user #' || number, email = NULL, password_hash = NULL, disabled = true, erased_at = now(), updated_at = now() WHERE id = p_user;
  DELETE FROM sessions WHERE user_id = p_user;
  UPDATE user_tokens SET used_at = now() WHERE user_id = p_user AND used_at IS NULL;
END
$f$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION thamani_user_erase(uuid) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION thamani_user_erase(uuid) TO thamani_app;
