-- Verifier access to MRV reports (issue 20): a verification body gets a time-limited, read-only
-- token scoped to named digesters and a period. Like every other scope (ADR 0009) it is verified
-- by the database from the token's secret, and the policies below read only that verified scope:
-- whatever the app asks, a verifier's transaction sees the reports and archived readings of its
-- digesters within its period, and nothing else (every other table's policy knows no `verifier`
-- role, so it sees none of their rows).

CREATE TABLE mrv_verifier_tokens (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- SHA-256 of the secret, as for API tokens; the secret is shown once, at creation.
  token_hash bytea NOT NULL UNIQUE CHECK (length(token_hash) = 32),
  unit_ids uuid[] NOT NULL CHECK (cardinality(unit_ids) BETWEEN 1 AND 1000),
  -- Reports whose period lies within [period_from, period_to) are visible, and archived readings
  -- with ts in it.
  period_from timestamptz NOT NULL,
  period_to timestamptz NOT NULL,
  expires_at timestamptz NOT NULL,
  created_by text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  CONSTRAINT mrv_verifier_tokens_period CHECK (period_to > period_from),
  CONSTRAINT mrv_verifier_tokens_expiry CHECK (expires_at > created_at)
);
--> statement-breakpoint
-- Authority: only the owner (CLI) creates or revokes tokens; the API role neither reads nor writes them.
REVOKE ALL ON mrv_verifier_tokens FROM PUBLIC, thamani_app;
--> statement-breakpoint
DO $ro$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'thamani_ingest') THEN
    REVOKE ALL ON mrv_verifier_tokens FROM thamani_ingest;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'thamani_readonly') THEN
    REVOKE ALL ON mrv_verifier_tokens FROM thamani_readonly;
  END IF;
END
$ro$;
--> statement-breakpoint
-- Entering a verifier's scope: a live token (not revoked, not expired) whose hash matches.
CREATE FUNCTION thamani_enter_mrv_verifier(secret text) RETURNS text LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
DECLARE
  token_id uuid;
BEGIN
  SELECT id INTO token_id FROM mrv_verifier_tokens
   WHERE token_hash = sha256(convert_to(secret, 'UTF8')) AND revoked_at IS NULL AND expires_at > now();
  IF NOT FOUND THEN
    RETURN NULL;
  END IF;
  PERFORM thamani_set_scope('verifier:' || token_id::text, 'verifier', 'mrv-verifier');
  RETURN 'verifier';
END
$f$;
--> statement-breakpoint
-- The verified verifier's token row (NULL for every other scope). Checked again per statement, so
-- a token revoked or expired after entering stops opening rows at once.
CREATE FUNCTION thamani_verifier_token() RETURNS mrv_verifier_tokens LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
  SELECT t FROM mrv_verifier_tokens t
   WHERE thamani_current_role() = 'verifier' AND 'verifier:' || t.id::text = thamani_current_actor()
     AND t.revoked_at IS NULL AND t.expires_at > now()
$f$;
--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION thamani_verifier_token() FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION thamani_verifier_token() TO thamani_app;
--> statement-breakpoint
ALTER TABLE mrv_reports ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE mrv_readings_archive ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
-- Fleet roles and the auditor read every report (permission audit:read decides who reaches the
-- routes); a verifier reads the reports of its digesters whose period lies within its own. Each
-- (SELECT …) is an InitPlan: the scope is read once per query, not per row.
CREATE POLICY mrv_reports_read ON mrv_reports FOR SELECT TO thamani_app
  USING ((SELECT thamani_sees_all()) OR (SELECT thamani_current_role()) = 'auditor'
    OR (unit_id = ANY (CAST((SELECT (thamani_verifier_token()).unit_ids) AS uuid[]))
        AND period_start >= (SELECT (thamani_verifier_token()).period_from)
        AND period_end <= (SELECT (thamani_verifier_token()).period_to)));
--> statement-breakpoint
CREATE POLICY mrv_reports_insert ON mrv_reports FOR INSERT TO thamani_app WITH CHECK ((SELECT thamani_sees_all()));
--> statement-breakpoint
CREATE POLICY mrv_archive_read ON mrv_readings_archive FOR SELECT TO thamani_app
  USING ((SELECT thamani_sees_all()) OR (SELECT thamani_current_role()) = 'auditor'
    OR (unit_id = ANY (CAST((SELECT (thamani_verifier_token()).unit_ids) AS uuid[]))
        AND ts >= (SELECT (thamani_verifier_token()).period_from)
        AND ts < (SELECT (thamani_verifier_token()).period_to)));
--> statement-breakpoint
CREATE POLICY mrv_archive_insert ON mrv_readings_archive FOR INSERT TO thamani_app WITH CHECK ((SELECT thamani_sees_all()));
--> statement-breakpoint
-- Grafana's read-only role keeps reading report metadata as before (0022).
DO $ro$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'thamani_readonly') THEN
    CREATE POLICY mrv_reports_readonly ON mrv_reports FOR SELECT TO thamani_readonly USING (true);
  END IF;
END
$ro$;