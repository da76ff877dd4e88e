-- Site reports (issue 20, 0035): one report over every digester of a site. A verifier scoped to
-- named digesters reads a site report only when its token names EVERY digester the report covers
-- (unit_ids, frozen at issue): a site report shows each digester's figures and readings, so a
-- token for some of them must not open the others' through it. Digester reports as before (0031).
DROP POLICY mrv_reports_read ON mrv_reports;
--> statement-breakpoint
CREATE POLICY mrv_reports_read ON mrv_reports FOR SELECT TO thamani_app
  USING ((SELECT thamani_sees_all()) OR (SELECT thamani_current_role()) = 'auditor'
    OR ((unit_id = ANY (CAST((SELECT (thamani_verifier_token()).unit_ids) AS uuid[]))
         OR (unit_ids IS NOT NULL AND unit_ids <@ CAST((SELECT (thamani_verifier_token()).unit_ids) AS uuid[])))
        AND period_start >= (SELECT (thamani_verifier_token()).period_from)
        AND period_end <= (SELECT (thamani_verifier_token()).period_to)));
