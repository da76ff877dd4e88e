-- Remote configuration and commands (ADR 0013): technicians and admins only, in the database too.
-- The API role reaches these tables only in a verified scope whose role sees the whole fleet
-- (admin, technician, system); a kitchen manager or collector assigned to the unit sees and
-- changes nothing here, whatever the application above asks. The history is never deleted.
ALTER TABLE device_config_defaults ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE device_configs ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE device_config_versions ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
ALTER TABLE device_commands ENABLE ROW LEVEL SECURITY;
--> statement-breakpoint
CREATE POLICY device_config_defaults_fleet ON device_config_defaults FOR ALL TO thamani_app
  USING ((SELECT thamani_sees_all())) WITH CHECK ((SELECT thamani_sees_all()));
--> statement-breakpoint
CREATE POLICY device_configs_fleet ON device_configs FOR ALL TO thamani_app
  USING ((SELECT thamani_sees_all())) WITH CHECK ((SELECT thamani_sees_all()));
--> statement-breakpoint
CREATE POLICY device_config_versions_fleet ON device_config_versions FOR ALL TO thamani_app
  USING ((SELECT thamani_sees_all())) WITH CHECK ((SELECT thamani_sees_all()));
--> statement-breakpoint
CREATE POLICY device_commands_fleet ON device_commands FOR ALL TO thamani_app
  USING ((SELECT thamani_sees_all())) WITH CHECK ((SELECT thamani_sees_all()));
--> statement-breakpoint
REVOKE DELETE, TRUNCATE ON device_config_versions, device_commands, device_configs FROM thamani_app;