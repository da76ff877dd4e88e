import { createHash, timingSafeEqual } from 'node:crypto';
import type { Authenticator, Principal } from './principal.ts';

/**
 * Temporary authenticator until users and roles exist: a single admin bearer token from config.
 * Compared in constant time on SHA-256 digests (equal length whatever the input).
 */
export function createAdminTokenAuthenticator(adminToken: string): Authenticator {
  const expected = createHash('sha256').update(adminToken).digest();
  // No row in the database stands for this token, so its scope is `trusted`: it works only where
  // the routes' pool is the owner's (tests of other features), never on the API role.
  const principal: Principal = {
    id: 'admin-token',
    role: 'admin',
    kind: 'admin-token',
    displayName: 'admin token',
    credential: { kind: 'trusted', actorId: 'admin-token', role: 'admin' },
  };
  return {
    authenticate(request) {
      const header = request.headers.authorization;
      if (typeof header !== 'string' || !header.startsWith('Bearer '))
        return Promise.resolve(undefined);
      const given = createHash('sha256').update(header.slice('Bearer '.length).trim()).digest();
      return Promise.resolve(timingSafeEqual(given, expected) ? principal : undefined);
    },
  };
}
