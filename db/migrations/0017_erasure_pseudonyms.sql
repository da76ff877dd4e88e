CREATE TABLE "audit_request_meta" (
	"audit_id" bigint PRIMARY KEY NOT NULL,
	"at" timestamp (3) with time zone NOT NULL,
	"ip" "inet",
	"user_agent" text
);
--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "number" integer NOT NULL GENERATED ALWAYS AS IDENTITY (sequence name "users_number_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 2147483647 START WITH 1 CACHE 1);--> statement-breakpoint
ALTER TABLE "alerts" ADD COLUMN "acknowledged_by_id" text;--> statement-breakpoint
CREATE INDEX "audit_request_meta_at_idx" ON "audit_request_meta" USING btree ("at");--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_number_unique" UNIQUE("number");--> statement-breakpoint
-- Issue 17 §4: immutable records refer to people by id; names are looked up at display time.
-- One rule for every display (pages, API, Grafana): a user's display name, "erased user #N" once
-- erased, "API token <name>" for a token; any other actor id (system, device:…, ip:…) as is.
-- SECURITY DEFINER so that the Grafana role, which may not read users, can name an acknowledger.
CREATE FUNCTION actor_display_name(actor text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $f$
  SELECT CASE
    WHEN actor IS NULL THEN NULL
    WHEN actor ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN coalesce(
      (SELECT CASE WHEN u.erased_at IS NOT NULL THEN 'erased user #' || u.number ELSE u.display_name END FROM users u WHERE u.id = actor::uuid), actor)
    WHEN actor LIKE 'token:%' THEN coalesce((SELECT 'API token ' || t.name FROM api_tokens t WHERE t.id::text = substr(actor, 7)), actor)
    WHEN actor = 'admin-token' THEN 'admin token'
    ELSE actor
  END
$f$;--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION actor_display_name(text) FROM PUBLIC;--> statement-breakpoint
GRANT EXECUTE ON FUNCTION actor_display_name(text) TO thamani_app, thamani_readonly;--> statement-breakpoint
-- Users erased before this migration: the pseudonym, not the old placeholder.
UPDATE users SET display_name = 'erased user #' || number WHERE erased_at IS NOT NULL;--> statement-breakpoint
-- alerts.acknowledged_by held a display name. Its id comes from the signed audit entry of the
-- acknowledgement (authoritative); failing that, from a unique display-name match; else 'unknown'.
-- The name column is dropped in the next migration.
UPDATE alerts a SET acknowledged_by_id = coalesce(
  (SELECT l.actor_id FROM audit_log l WHERE l.action = 'alert.acknowledge' AND l.target_id = a.id::text ORDER BY l.seq DESC LIMIT 1),
  (SELECT min(u.id::text) FROM users u WHERE u.display_name = a.acknowledged_by HAVING count(*) = 1),
  'unknown')
WHERE a.acknowledged_by IS NOT NULL;--> statement-breakpoint
REVOKE UPDATE (acknowledged_by) ON alerts FROM thamani_app;--> statement-breakpoint
GRANT UPDATE (acknowledged_by_id) ON alerts TO thamani_app;--> statement-breakpoint
-- Request metadata beside the audit log: the API appends and, on erasure, deletes; the gateway
-- appends; neither rewrites (only the owner's retention job and erasure remove). No foreign key to
-- audit_log: TRUNCATE of the log must meet its append-only trigger (0007), not a constraint.
REVOKE ALL ON audit_request_meta FROM thamani_app;--> statement-breakpoint
GRANT SELECT, INSERT, DELETE ON audit_request_meta TO thamani_app;--> statement-breakpoint
GRANT SELECT, INSERT ON audit_request_meta TO thamani_ingest;--> statement-breakpoint
-- Sessions: erasure and the sign-in metadata retention remove whole rows.
GRANT DELETE ON sessions TO thamani_app;
