-- The leaf hashes of each issued report, per chunk of the signed tree (issue 20: name the exact
-- reading that differs). Written in the issuing transaction, append-only like the report.
-- Trusted by nobody: a verifier accepts a chunk's hashes only when their RFC 6962 root equals
-- the chunk root the report signs, so a changed archive row is named to its leaf while these
-- hashes cannot be forged to match it. 32 bytes per reading.
CREATE TABLE mrv_report_leaf_hashes (
  report_id uuid NOT NULL,
  chunk integer NOT NULL CHECK (chunk >= 0),
  -- The chunk's leaf hashes, SHA-256(0x00 ‖ leaf) each, concatenated in leaf order.
  hashes bytea NOT NULL CHECK (length(hashes) > 0 AND length(hashes) % 32 = 0),
  CONSTRAINT mrv_report_leaf_hashes_pk PRIMARY KEY (report_id, chunk),
  -- Deferred: the report row is inserted after its leaves were hashed, in the same transaction.
  CONSTRAINT mrv_report_leaf_hashes_report_fk FOREIGN KEY (report_id) REFERENCES mrv_reports (id) ON DELETE RESTRICT DEFERRABLE INITIALLY DEFERRED
);
--> statement-breakpoint
CREATE TRIGGER mrv_report_leaf_hashes_append_only BEFORE UPDATE OR DELETE ON mrv_report_leaf_hashes FOR EACH ROW EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
CREATE TRIGGER mrv_report_leaf_hashes_no_truncate BEFORE TRUNCATE ON mrv_report_leaf_hashes FOR EACH STATEMENT EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
REVOKE ALL ON mrv_report_leaf_hashes FROM PUBLIC, thamani_app;
--> statement-breakpoint
GRANT SELECT, INSERT ON mrv_report_leaf_hashes TO thamani_app;
--> statement-breakpoint
ALTER TABLE mrv_report_leaf_hashes ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
-- Visible with the report (mrv_reports' own policy applies inside the subquery: a verifier sees
-- the hashes of its reports only).
CREATE POLICY mrv_leaf_hashes_read ON mrv_report_leaf_hashes FOR SELECT TO thamani_app
  USING (EXISTS (SELECT 1 FROM mrv_reports r WHERE r.id = report_id));
--> statement-breakpoint
CREATE POLICY mrv_leaf_hashes_insert ON mrv_report_leaf_hashes FOR INSERT TO thamani_app WITH CHECK ((SELECT thamani_sees_all()));
--> statement-breakpoint
DO $ro$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'thamani_ingest') THEN
    REVOKE ALL ON mrv_report_leaf_hashes FROM thamani_ingest;
  END IF;
END
$ro$;