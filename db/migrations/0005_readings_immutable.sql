-- Readings are immutable once stored: no UPDATE or DELETE path in the application, and the
-- database refuses them unless the retention job marks its transaction (SET LOCAL
-- thamani.retention = 'on'). Dropping or detaching whole partitions/chunks (raw retention) is
-- DDL and not affected. Row triggers on a partitioned table apply to every partition.
CREATE FUNCTION readings_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(current_setting('thamani.retention', true), '') = 'on' THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION 'readings are immutable: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
END
$$;
--> statement-breakpoint
CREATE TRIGGER readings_immutable_rows BEFORE UPDATE OR DELETE ON readings FOR EACH ROW EXECUTE FUNCTION readings_refuse_change();
--> statement-breakpoint
CREATE TRIGGER readings_immutable_truncate BEFORE TRUNCATE ON readings FOR EACH STATEMENT EXECUTE FUNCTION readings_refuse_change();
