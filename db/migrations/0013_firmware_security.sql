-- Firmware (docs/security-model.md, "Firmware"): images are immutable once uploaded; only the
-- approval may be set, once. The API role uploads, approves and manages rollouts in its scope
-- (fleet roles only, by permission); it never deletes. Device progress is written by the gateway.
CREATE FUNCTION firmware_images_guard() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF TG_OP IN ('DELETE', 'TRUNCATE') THEN
    RAISE EXCEPTION 'firmware images are immutable: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
  END IF;
  IF NEW.sha256 IS DISTINCT FROM OLD.sha256 OR NEW.image IS DISTINCT FROM OLD.image OR NEW.size IS DISTINCT FROM OLD.size
     OR NEW.version IS DISTINCT FROM OLD.version OR NEW.device_kind IS DISTINCT FROM OLD.device_kind
     OR NEW.hardware_revision IS DISTINCT FROM OLD.hardware_revision OR NEW.release_notes IS DISTINCT FROM OLD.release_notes
     OR NEW.uploaded_by IS DISTINCT FROM OLD.uploaded_by OR NEW.uploaded_at IS DISTINCT FROM OLD.uploaded_at
     OR (OLD.approved_by IS NOT NULL AND (NEW.approved_by IS DISTINCT FROM OLD.approved_by OR NEW.approved_at IS DISTINCT FROM OLD.approved_at)) THEN
    RAISE EXCEPTION 'firmware image % is immutable (only its approval may be set, once)', OLD.sha256 USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$f$;
--> statement-breakpoint
CREATE TRIGGER firmware_images_immutable BEFORE UPDATE OR DELETE ON firmware_images FOR EACH ROW EXECUTE FUNCTION firmware_images_guard();
--> statement-breakpoint
CREATE TRIGGER firmware_images_no_truncate BEFORE TRUNCATE ON firmware_images FOR EACH STATEMENT EXECUTE FUNCTION firmware_images_guard();
--> statement-breakpoint
REVOKE DELETE ON firmware_images, firmware_rollouts, firmware_rollout_devices FROM thamani_app;
