-- Issue 17 §4: the acknowledger is kept as an id (acknowledged_by_id, filled in 0017); the name goes.
ALTER TABLE "alerts" DROP COLUMN "acknowledged_by";