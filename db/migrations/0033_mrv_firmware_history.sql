-- Which firmware each device ran, and since when (issue 20, MRV provenance). Recorded by the
-- database itself whenever devices.firmware_version is set or changed, whatever wrote it (the
-- device's own report, a firmware rollout, a technician), so no writer can forget it. Append-only.
CREATE TABLE device_firmware_history (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  device_id text NOT NULL REFERENCES devices (id) ON DELETE RESTRICT,
  version text,
  since timestamptz NOT NULL DEFAULT now(),
  -- 'change': seen changing; 'migration': the version the device had when history began.
  source text NOT NULL DEFAULT 'change' CHECK (source IN ('change', 'migration'))
);
--> statement-breakpoint
CREATE INDEX device_firmware_history_device_idx ON device_firmware_history (device_id, since);
--> statement-breakpoint
CREATE TRIGGER device_firmware_history_append_only BEFORE UPDATE OR DELETE ON device_firmware_history FOR EACH ROW EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
CREATE TRIGGER device_firmware_history_no_truncate BEFORE TRUNCATE ON device_firmware_history FOR EACH STATEMENT EXECUTE FUNCTION mrv_refuse_change();
--> statement-breakpoint
-- Written only by the trigger below (definer): no role inserts history of its own.
REVOKE ALL ON device_firmware_history FROM PUBLIC, thamani_app;
--> statement-breakpoint
DO $ro$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'thamani_ingest') THEN
    REVOKE ALL ON device_firmware_history FROM thamani_ingest;
  END IF;
END
$ro$;
--> statement-breakpoint
CREATE FUNCTION device_firmware_note() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  IF TG_OP = 'INSERT' OR NEW.firmware_version IS DISTINCT FROM OLD.firmware_version THEN
    INSERT INTO device_firmware_history (device_id, version) VALUES (NEW.id, NEW.firmware_version);
  END IF;
  RETURN NULL;
END
$f$;
--> statement-breakpoint
CREATE TRIGGER devices_firmware_history AFTER INSERT OR UPDATE OF firmware_version ON devices FOR EACH ROW EXECUTE FUNCTION device_firmware_note();
--> statement-breakpoint
INSERT INTO device_firmware_history (device_id, version, source) SELECT id, firmware_version, 'migration' FROM devices;