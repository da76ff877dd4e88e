CREATE TABLE "firmware_images" (
	"sha256" text PRIMARY KEY NOT NULL,
	"device_kind" "unit_kind" NOT NULL,
	"hardware_revision" text,
	"version" text NOT NULL,
	"size" integer NOT NULL,
	"release_notes" text DEFAULT '' NOT NULL,
	"image" "bytea" NOT NULL,
	"uploaded_by" text NOT NULL,
	"uploaded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"approved_by" text,
	"approved_at" timestamp with time zone,
	CONSTRAINT "firmware_images_version_uq" UNIQUE NULLS NOT DISTINCT("device_kind","hardware_revision","version")
);
--> statement-breakpoint
CREATE TABLE "firmware_rollout_devices" (
	"rollout_id" uuid NOT NULL,
	"device_id" text NOT NULL,
	"wave" integer NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"reason" text,
	"from_version" text,
	"sent_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "firmware_rollout_devices_rollout_id_device_id_pk" PRIMARY KEY("rollout_id","device_id")
);
--> statement-breakpoint
CREATE TABLE "firmware_rollouts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"image_sha256" text NOT NULL,
	"target" jsonb NOT NULL,
	"wave_size" integer NOT NULL,
	"failure_threshold" double precision NOT NULL,
	"allow_downgrade" boolean DEFAULT false NOT NULL,
	"manifest_ttl_hours" integer NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"paused_reason" text,
	"created_by" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "firmware_rollout_devices" ADD CONSTRAINT "firmware_rollout_devices_rollout_id_firmware_rollouts_id_fk" FOREIGN KEY ("rollout_id") REFERENCES "public"."firmware_rollouts"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "firmware_rollout_devices" ADD CONSTRAINT "firmware_rollout_devices_device_id_devices_id_fk" FOREIGN KEY ("device_id") REFERENCES "public"."devices"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "firmware_rollouts" ADD CONSTRAINT "firmware_rollouts_image_sha256_firmware_images_sha256_fk" FOREIGN KEY ("image_sha256") REFERENCES "public"."firmware_images"("sha256") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "firmware_rollout_devices_device_idx" ON "firmware_rollout_devices" USING btree ("device_id") WHERE "firmware_rollout_devices"."status" NOT IN ('installed', 'failed', 'skipped');