CREATE TABLE "mrv_calibrations" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "mrv_calibrations_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"device_id" text NOT NULL,
	"metric" text NOT NULL,
	"valid_from" timestamp with time zone NOT NULL,
	"valid_to" timestamp with time zone,
	"result" text NOT NULL,
	"reference" text NOT NULL,
	"recorded_by" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "mrv_calibrations_window" CHECK ("mrv_calibrations"."valid_to" IS NULL OR "mrv_calibrations"."valid_to" > "mrv_calibrations"."valid_from")
);
--> statement-breakpoint
CREATE TABLE "mrv_reports" (
	"id" uuid PRIMARY KEY NOT NULL,
	"unit_id" uuid NOT NULL,
	"period_start" timestamp with time zone NOT NULL,
	"period_end" timestamp with time zone NOT NULL,
	"version" integer NOT NULL,
	"supersedes" uuid,
	"reason" text,
	"issued_at" timestamp with time zone NOT NULL,
	"issued_by" text NOT NULL,
	"merkle_root" text NOT NULL,
	"leaf_count" bigint NOT NULL,
	"key_id" text NOT NULL,
	"document" text NOT NULL,
	CONSTRAINT "mrv_reports_version_uq" UNIQUE("unit_id","period_start","version"),
	CONSTRAINT "mrv_reports_supersedes_uq" UNIQUE("supersedes"),
	CONSTRAINT "mrv_reports_period" CHECK ("mrv_reports"."period_end" > "mrv_reports"."period_start"),
	CONSTRAINT "mrv_reports_correction" CHECK (("mrv_reports"."version" = 1) = ("mrv_reports"."supersedes" IS NULL) AND ("mrv_reports"."supersedes" IS NULL) = ("mrv_reports"."reason" IS NULL))
);
--> statement-breakpoint
CREATE TABLE "mrv_site_parameters" (
	"site_id" uuid PRIMARY KEY NOT NULL,
	"params" jsonb NOT NULL,
	"updated_by" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "mrv_calibrations" ADD CONSTRAINT "mrv_calibrations_device_id_devices_id_fk" FOREIGN KEY ("device_id") REFERENCES "public"."devices"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mrv_reports" ADD CONSTRAINT "mrv_reports_unit_id_units_id_fk" FOREIGN KEY ("unit_id") REFERENCES "public"."units"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mrv_site_parameters" ADD CONSTRAINT "mrv_site_parameters_site_id_sites_id_fk" FOREIGN KEY ("site_id") REFERENCES "public"."sites"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "mrv_calibrations_device_idx" ON "mrv_calibrations" USING btree ("device_id","metric","valid_from");--> statement-breakpoint
CREATE INDEX "mrv_reports_period_idx" ON "mrv_reports" USING btree ("period_start","period_end");