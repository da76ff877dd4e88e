-- Notifications (notifications/, docs/decisions/0012-notifications.md). The API role reads and
-- writes only the caller's own settings and reads only the caller's own deliveries (an admin or
-- technician: everyone's, to see failures); the outbox is written by the owner's background work
-- (the alert evaluator, the sender), never by the API role.
ALTER TABLE notification_settings ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE notification_outbox ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY notification_settings_own ON notification_settings FOR ALL TO thamani_app
  USING (user_id::text = (SELECT thamani_current_actor()))
  WITH CHECK (user_id::text = (SELECT thamani_current_actor()));
--> statement-breakpoint
CREATE POLICY notification_outbox_read ON notification_outbox FOR SELECT TO thamani_app
  USING ((SELECT thamani_sees_all()) OR user_id::text = (SELECT thamani_current_actor()));
--> statement-breakpoint
REVOKE INSERT, UPDATE, DELETE ON notification_outbox FROM thamani_app;
--> statement-breakpoint
REVOKE DELETE ON notification_settings FROM thamani_app;
--> statement-breakpoint
-- A change of someone's settings in a credential's scope carries an audit entry about that user
-- in the same transaction (the check of migration 0019, `user:<user_id>`).
CREATE CONSTRAINT TRIGGER notification_settings_audited AFTER INSERT OR UPDATE OR DELETE ON notification_settings DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION thamani_change_audited();
--> statement-breakpoint
-- Erasure (thamani_user_erase) removes the person's addresses: their settings and every
-- notification addressed to them.
CREATE FUNCTION thamani_notifications_erase() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $f$
BEGIN
  DELETE FROM notification_settings WHERE user_id = NEW.id;
  DELETE FROM notification_outbox WHERE user_id = NEW.id;
  RETURN NULL;
END
$f$;
--> statement-breakpoint
CREATE TRIGGER users_erase_notifications AFTER UPDATE OF erased_at ON users FOR EACH ROW
  WHEN (NEW.erased_at IS NOT NULL AND OLD.erased_at IS NULL) EXECUTE FUNCTION thamani_notifications_erase();