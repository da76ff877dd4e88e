import type { FastifyRequest } from 'fastify';
import type { Db } from '../db/client.ts';
import { runScoped, type ScopeCredential } from '../db/scoped.ts';
import { credentialOf } from './audit-context.ts';

/**
 * The one way a route runs database work: in a transaction whose scope the database verified
 * from the request's own credential (its session secret or API token; db/scoped.ts), with the
 * feature's services built on that transaction. Row-level security and the definer functions
 * that change people and credentials see that verified caller, never a role the code asserts.
 * A route without a user passes the credential it has instead (/enroll: the enrolment token).
 */
export function scopedServices<S>(db: Db, make: (tx: Db) => S) {
  return <T>(
    request: FastifyRequest,
    fn: (services: S) => Promise<T>,
    credential?: ScopeCredential,
  ): Promise<T> =>
    // A drizzle transaction offers the same query API as the pool (nested transactions become savepoints).
    runScoped(db, credential ?? credentialOf(request), (tx) => fn(make(tx as unknown as Db)));
}

export type ScopedServices<S> = ReturnType<typeof scopedServices<S>>;
