import { customType } from 'drizzle-orm/pg-core';

/** bytea as a Buffer (drizzle has no built-in bytea column for node-postgres). */
export const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });
