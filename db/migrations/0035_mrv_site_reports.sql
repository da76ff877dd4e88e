ALTER TABLE "mrv_reports" ALTER COLUMN "unit_id" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "mrv_reports" ADD COLUMN "site_id" uuid;--> statement-breakpoint
ALTER TABLE "mrv_reports" ADD COLUMN "unit_ids" uuid[];--> statement-breakpoint
ALTER TABLE "mrv_reports" ADD COLUMN "leaf_sources" uuid[];--> statement-breakpoint
ALTER TABLE "mrv_reports" ADD CONSTRAINT "mrv_reports_site_id_sites_id_fk" FOREIGN KEY ("site_id") REFERENCES "public"."sites"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "mrv_reports" ADD CONSTRAINT "mrv_reports_site_version_uq" UNIQUE("site_id","period_start","version");--> statement-breakpoint
ALTER TABLE "mrv_reports" ADD CONSTRAINT "mrv_reports_subject" CHECK (("mrv_reports"."unit_id" IS NULL) = ("mrv_reports"."site_id" IS NOT NULL) AND ("mrv_reports"."site_id" IS NULL) = ("mrv_reports"."unit_ids" IS NULL));