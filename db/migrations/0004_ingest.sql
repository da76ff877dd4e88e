CREATE TABLE "latest_readings" (
	"device_id" text NOT NULL,
	"metric" text NOT NULL,
	"unit_id" uuid NOT NULL,
	"ts" timestamp with time zone NOT NULL,
	"value" double precision NOT NULL,
	CONSTRAINT "latest_readings_device_id_metric_pk" PRIMARY KEY("device_id","metric")
);
--> statement-breakpoint
CREATE TABLE "quarantine" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "quarantine_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"device_id" text NOT NULL,
	"unit_id" uuid NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	"topic" text NOT NULL,
	"payload" "bytea" NOT NULL,
	"payload_size" integer NOT NULL,
	"batch_index" integer,
	"seq" bigint,
	"reasons" jsonb NOT NULL,
	"status" text DEFAULT 'open' NOT NULL,
	"replayed_at" timestamp with time zone,
	"replay_result" jsonb
);
--> statement-breakpoint
CREATE INDEX "latest_readings_unit_idx" ON "latest_readings" USING btree ("unit_id");--> statement-breakpoint
CREATE INDEX "quarantine_device_idx" ON "quarantine" USING btree ("device_id","received_at");--> statement-breakpoint
CREATE INDEX "quarantine_status_idx" ON "quarantine" USING btree ("status","received_at");