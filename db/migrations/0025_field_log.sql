CREATE TABLE "collections" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "collections_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"unit_id" uuid NOT NULL,
	"unit_kind" "unit_kind" DEFAULT 'collection_point' NOT NULL,
	"collected_at" timestamp with time zone NOT NULL,
	"weight_kg" double precision NOT NULL,
	"note" text,
	"collected_by" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "collections_collection_point" CHECK ("collections"."unit_kind" = 'collection_point'),
	CONSTRAINT "collections_weight" CHECK ("collections"."weight_kg" > 0 AND "collections"."weight_kg" <= 5000),
	CONSTRAINT "collections_note" CHECK ("collections"."note" IS NULL OR length("collections"."note") <= 500)
);
--> statement-breakpoint
CREATE TABLE "feedings" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "feedings_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"unit_id" uuid NOT NULL,
	"unit_kind" "unit_kind" DEFAULT 'biodigester' NOT NULL,
	"fed_at" timestamp with time zone NOT NULL,
	"kg" double precision NOT NULL,
	"note" text,
	"recorded_by" text NOT NULL,
	"recorded_at" timestamp with time zone DEFAULT now() NOT NULL,
	"corrected_at" timestamp with time zone,
	"voided_at" timestamp with time zone,
	CONSTRAINT "feedings_biodigester" CHECK ("feedings"."unit_kind" = 'biodigester'),
	CONSTRAINT "feedings_kg" CHECK ("feedings"."kg" > 0 AND "feedings"."kg" <= 1000),
	CONSTRAINT "feedings_note" CHECK ("feedings"."note" IS NULL OR length("feedings"."note") <= 500)
);
--> statement-breakpoint
ALTER TABLE "collections" ADD CONSTRAINT "collections_unit_kind_fk" FOREIGN KEY ("unit_id","unit_kind") REFERENCES "public"."units"("id","kind") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "feedings" ADD CONSTRAINT "feedings_unit_kind_fk" FOREIGN KEY ("unit_id","unit_kind") REFERENCES "public"."units"("id","kind") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "collections_unit_idx" ON "collections" USING btree ("unit_id","collected_at");--> statement-breakpoint
CREATE INDEX "feedings_unit_idx" ON "feedings" USING btree ("unit_id","fed_at");