import { defineConfig } from 'drizzle-kit';

// Only generation reads this file; migrations are applied by `thamani migrate` (db/migrate.ts),
// which also runs them at every start.
export default defineConfig({
  dialect: 'postgresql',
  schema: './db/schema/index.ts',
  out: './db/migrations',
});
