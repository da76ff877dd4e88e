-- Every unit each device has been on (issue 20, docs/mrv.md "Reading a digester's month"). A
-- reading carries the unit its device was on when it was stored, and `readings` has no index on
-- unit_id (one there would cost every ingest write), so finding a unit's readings by unit_id
-- scans the period's readings of the whole fleet: issuing one digester-month read all 200
-- digesters' months in the bench. Through this table, a unit's readings are read by the readings
-- key (device_id, ts), device by device, and still filtered by unit_id; a device moved to
-- another unit keeps its pair, so its readings stored under this unit are not missed.
CREATE TABLE device_unit_history (
  unit_id uuid NOT NULL,
  device_id text NOT NULL,
  first_seen_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT device_unit_history_pk PRIMARY KEY (unit_id, device_id)
);
--> statement-breakpoint
-- Kept by the database whoever changes a device (the API role included): a definer function.
CREATE FUNCTION thamani_record_device_unit() RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  INSERT INTO device_unit_history (unit_id, device_id) VALUES (NEW.unit_id, NEW.id) ON CONFLICT DO NOTHING;
  RETURN NULL;
END
$f$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION thamani_record_device_unit() FROM PUBLIC;
--> statement-breakpoint
CREATE TRIGGER devices_unit_history AFTER INSERT OR UPDATE OF unit_id ON devices
  FOR EACH ROW EXECUTE FUNCTION thamani_record_device_unit();
--> statement-breakpoint
-- Append-only, read by the owner's work (MRV issuing) only.
REVOKE ALL ON device_unit_history FROM PUBLIC;
--> statement-breakpoint
CREATE TRIGGER device_unit_history_append_only BEFORE UPDATE OR DELETE ON device_unit_history
  FOR EACH ROW EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
INSERT INTO device_unit_history (unit_id, device_id) SELECT unit_id, id FROM devices ON CONFLICT DO NOTHING;
--> statement-breakpoint
-- The pairs of readings already stored (devices moved before this table existed): one scan of
-- `readings` at upgrade.
INSERT INTO device_unit_history (unit_id, device_id) SELECT DISTINCT unit_id, device_id FROM readings ON CONFLICT DO NOTHING;
