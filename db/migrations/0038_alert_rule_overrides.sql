CREATE TABLE "alert_rule_overrides" (
	"unit_id" uuid NOT NULL,
	"rule_id" text NOT NULL,
	"unit_kind" "unit_kind" NOT NULL,
	"warn" double precision NOT NULL,
	"critical" double precision,
	"clear" double precision NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"updated_by_id" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "alert_rule_overrides_unit_id_rule_id_pk" PRIMARY KEY("unit_id","rule_id")
);
--> statement-breakpoint
ALTER TABLE "alert_rules" ADD CONSTRAINT "alert_rules_id_kind_uq" UNIQUE("id","unit_kind");--> statement-breakpoint
ALTER TABLE "alert_rule_overrides" ADD CONSTRAINT "alert_rule_overrides_unit_fk" FOREIGN KEY ("unit_id","unit_kind") REFERENCES "public"."units"("id","kind") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "alert_rule_overrides" ADD CONSTRAINT "alert_rule_overrides_rule_fk" FOREIGN KEY ("rule_id","unit_kind") REFERENCES "public"."alert_rules"("id","unit_kind") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "alert_rule_overrides_rule_idx" ON "alert_rule_overrides" USING btree ("rule_id");