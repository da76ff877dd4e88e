CREATE TABLE "login_throttle" (
	"key_hash" "bytea" PRIMARY KEY NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"attempts" integer NOT NULL
);
--> statement-breakpoint
-- The API counts sign-in attempts here and removes keys whose window has passed.
GRANT SELECT, INSERT, UPDATE, DELETE ON "login_throttle" TO thamani_app;
--> statement-breakpoint
-- Every token expires: tokens made without an expiry get 90 days from now (API_TOKEN_DEFAULT_DAYS).
UPDATE "api_tokens" SET "expires_at" = now() + interval '90 days' WHERE "expires_at" IS NULL;
--> statement-breakpoint
ALTER TABLE "api_tokens" ALTER COLUMN "expires_at" SET NOT NULL;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD COLUMN "owner_id" uuid;--> statement-breakpoint
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_owner_id_users_id_fk" FOREIGN KEY ("owner_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;
--> statement-breakpoint
-- Owners of existing tokens: the user who made them, or the owner of the token that made them.
UPDATE "api_tokens" t SET "owner_id" = u."id" FROM "users" u WHERE u."id"::text = t."created_by";
--> statement-breakpoint
UPDATE "api_tokens" t SET "owner_id" = p."owner_id" FROM "api_tokens" p WHERE t."created_by" = 'token:' || p."id"::text AND t."owner_id" IS NULL;
--> statement-breakpoint
-- Tokens of users already disabled or erased die now (they were still honoured before).
UPDATE "api_tokens" t SET "revoked_at" = now() FROM "users" u WHERE u."id" = t."owner_id" AND (u."disabled" OR u."erased_at" IS NOT NULL) AND t."revoked_at" IS NULL;
--> statement-breakpoint
CREATE INDEX "api_tokens_owner_idx" ON "api_tokens" USING btree ("owner_id");
