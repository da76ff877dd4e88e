-- Ingest writes as its own LOGIN role (app/db-roles.ts, `thamani_ingest_writer`, a member of
-- thamani_ingest), no longer as the owner: it appends readings and quarantine records and keeps
-- the latest state, nothing else. Not being the owner, it cannot disable the immutability
-- triggers (0005), truncate or drop readings, or touch anything else; readings it can only
-- INSERT and SELECT (0007).
GRANT SELECT, INSERT, UPDATE ON latest_readings TO thamani_ingest;
--> statement-breakpoint
GRANT SELECT, INSERT ON quarantine TO thamani_ingest;
