CREATE TYPE "public"."device_status" AS ENUM('pending', 'active', 'suspended', 'retired');--> statement-breakpoint
CREATE TYPE "public"."unit_kind" AS ENUM('biodigester', 'collection_point');--> statement-breakpoint
CREATE TABLE "devices" (
	"id" text PRIMARY KEY NOT NULL,
	"unit_id" uuid NOT NULL,
	"kind" "unit_kind" NOT NULL,
	"status" "device_status" DEFAULT 'pending' NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"hardware_revision" text,
	"firmware_version" text,
	"last_seen_at" timestamp with time zone,
	"online" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "devices_id_format" CHECK ("devices"."id" ~ '^[a-z0-9][a-z0-9_-]{2,63}$')
);
--> statement-breakpoint
CREATE TABLE "readings" (
	"ts" timestamp with time zone NOT NULL,
	"device_id" text NOT NULL,
	"unit_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"temperature_c" double precision,
	"ph" double precision,
	"biogas_pressure_kpa" double precision,
	"methane_pct" double precision,
	"gas_flow_lpm" double precision,
	"slurry_level_pct" double precision,
	"h2s_ppm" double precision,
	"fill_level_pct" double precision,
	"weight_kg" double precision,
	"lid_open" double precision,
	"battery_v" double precision,
	"rssi_dbm" double precision,
	CONSTRAINT "readings_pk" PRIMARY KEY("device_id","ts")
);
--> statement-breakpoint
CREATE TABLE "sites" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"county" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sites_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "units" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"site_id" uuid NOT NULL,
	"kind" "unit_kind" NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "units_site_name_uq" UNIQUE("site_id","name"),
	CONSTRAINT "units_id_kind_uq" UNIQUE("id","kind")
);
--> statement-breakpoint
ALTER TABLE "devices" ADD CONSTRAINT "devices_unit_kind_fk" FOREIGN KEY ("unit_id","kind") REFERENCES "public"."units"("id","kind") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "units" ADD CONSTRAINT "units_site_id_sites_id_fk" FOREIGN KEY ("site_id") REFERENCES "public"."sites"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "devices_unit_idx" ON "devices" USING btree ("unit_id");