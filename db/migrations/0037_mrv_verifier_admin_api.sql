-- Verifier tokens administered over the HTTP API (issue 20), not only by the owner's CLI. The API
-- role still neither reads nor writes mrv_verifier_tokens (0031): these definer functions do it
-- for a verified admin scope (or the owner's trusted work, the CLI), and never hand out the
-- secret's hash. created_by is the verified actor, whatever the request says (the owner's
-- trusted work names its own: `cli:<user>`).
CREATE FUNCTION thamani_mrv_verifier_insert(p_name text, p_token_hash bytea, p_unit_ids uuid[], p_from timestamptz, p_to timestamptz, p_expires timestamptz, p_created_by text)
  RETURNS TABLE (id uuid, name text, unit_ids uuid[], period_from timestamptz, period_to timestamptz, expires_at timestamptz, created_by text, created_at timestamptz, revoked_at timestamptz)
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  s thamani_scope;
BEGIN
  s := thamani_require_scope(ARRAY['admin', 'system']);
  IF EXISTS (SELECT 1 FROM unnest(p_unit_ids) u(uid) LEFT JOIN units x ON x.id = u.uid WHERE x.kind IS DISTINCT FROM 'biodigester') THEN
    RAISE EXCEPTION 'a verifier token opens digesters only' USING ERRCODE = 'check_violation';
  END IF;
  RETURN QUERY INSERT INTO mrv_verifier_tokens AS t (name, token_hash, unit_ids, period_from, period_to, expires_at, created_by)
    VALUES (p_name, p_token_hash, p_unit_ids, p_from, p_to, p_expires, CASE WHEN s.via = 'trusted' THEN coalesce(p_created_by, s.actor_id) ELSE s.actor_id END)
    RETURNING t.id, t.name, t.unit_ids, t.period_from, t.period_to, t.expires_at, t.created_by, t.created_at, t.revoked_at;
END
$f$;
--> statement-breakpoint
CREATE FUNCTION thamani_mrv_verifier_list()
  RETURNS TABLE (id uuid, name text, unit_ids uuid[], period_from timestamptz, period_to timestamptz, expires_at timestamptz, created_by text, created_at timestamptz, revoked_at timestamptz)
  LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  RETURN QUERY SELECT t.id, t.name, t.unit_ids, t.period_from, t.period_to, t.expires_at, t.created_by, t.created_at, t.revoked_at
    FROM mrv_verifier_tokens t ORDER BY t.created_at DESC, t.id;
END
$f$;
--> statement-breakpoint
CREATE FUNCTION thamani_mrv_verifier_revoke(p_id uuid) RETURNS boolean
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  PERFORM thamani_require_scope(ARRAY['admin', 'system']);
  UPDATE mrv_verifier_tokens SET revoked_at = now() WHERE id = p_id AND revoked_at IS NULL;
  RETURN FOUND;
END
$f$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION thamani_mrv_verifier_insert(text, bytea, uuid[], timestamptz, timestamptz, timestamptz, text), thamani_mrv_verifier_list(), thamani_mrv_verifier_revoke(uuid) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION thamani_mrv_verifier_insert(text, bytea, uuid[], timestamptz, timestamptz, timestamptz, text), thamani_mrv_verifier_list(), thamani_mrv_verifier_revoke(uuid) TO thamani_app;