export { createDatabase, type Database, type Db } from './client.ts';
export { runMigrations, migrationsFolder } from './migrate.ts';
export { startEmbeddedPostgres, type EmbeddedPostgres } from './embedded-postgres.ts';
export * as timeseries from './timeseries.ts';
export type { TimeseriesInfo, TimeseriesMode } from './timeseries.ts';
export * as schema from './schema/index.ts';
