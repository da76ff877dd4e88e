-- Signed audit entries (docs/decisions/0004-audit-signatures.md). `seq` is the chain position,
-- assigned by the writer under the chain lock: 1, 2, 3 … with no gaps, unlike `id`, whose
-- sequence skips the values of rolled-back transactions. Entries written before this migration
-- get their positions in id order (the order they were chained in) and stay unsigned: the first
-- signed entry, which signs the hash of the last of them, anchors that legacy prefix.
ALTER TABLE "audit_log" ADD COLUMN "seq" bigint;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "key_id" text;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "signature" "bytea";--> statement-breakpoint
ALTER TABLE "audit_anchor" ADD COLUMN "through_seq" bigint;--> statement-breakpoint
-- The append-only trigger refuses every UPDATE; this one-off numbering changes no hashed field.
ALTER TABLE "audit_log" DISABLE TRIGGER "audit_log_append_only";--> statement-breakpoint
UPDATE "audit_log" a SET "seq" = n.seq FROM (SELECT id, row_number() OVER (ORDER BY id) AS seq FROM "audit_log") n WHERE a.id = n.id;--> statement-breakpoint
ALTER TABLE "audit_log" ENABLE TRIGGER "audit_log_append_only";--> statement-breakpoint
ALTER TABLE "audit_log" ALTER COLUMN "seq" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "audit_log" ADD CONSTRAINT "audit_log_seq_unique" UNIQUE("seq");--> statement-breakpoint
-- Retention removes by chain position and records the last removed one's, which the signed
-- `audit.retention` entry the job writes in the same transaction attests (audit/audit-retention.ts).
CREATE OR REPLACE FUNCTION audit_log_apply_retention(keep interval DEFAULT interval '7 years') RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
  last_row audit_log%ROWTYPE;
  removed bigint;
BEGIN
  IF keep < interval '7 years' THEN
    RAISE EXCEPTION 'audit retention is at least 7 years (asked for %)', keep;
  END IF;
  SELECT * INTO last_row FROM audit_log WHERE at < now() - keep ORDER BY seq DESC LIMIT 1;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  PERFORM set_config('thamani.audit_retention', 'on', true);
  DELETE FROM audit_log WHERE seq <= last_row.seq;
  GET DIAGNOSTICS removed = ROW_COUNT;
  PERFORM set_config('thamani.audit_retention', 'off', true);
  INSERT INTO audit_anchor (id, through_id, through_seq, last_hash, at) VALUES (true, last_row.id::text, last_row.seq, last_row.hash, now())
    ON CONFLICT (id) DO UPDATE SET through_id = excluded.through_id, through_seq = excluded.through_seq, last_hash = excluded.last_hash, at = excluded.at;
  RETURN removed;
END
$f$;--> statement-breakpoint
REVOKE EXECUTE ON FUNCTION audit_log_apply_retention(interval) FROM PUBLIC;
