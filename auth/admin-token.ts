import { createHash, timingSafeEqual } from 'node:crypto';
import type { Authenticator, Principal } from './principal.ts';

/**
 * Temporary authenticator until users and roles exist: a single admin bearer token from config.
 * Compared in constant time on SHA-256 digests (equal length whatever the input).
 */
export function createAdminTokenAuthenticator(adminToken: string): Authenticator {
  const expected = createHash('sha256').update(adminToken).digest();
  const principal: Principal = { id: 'admin-token', role: 'admin', kind: 'admin-token', displayName: 'admin token' };
  return {
    authenticate(request) {
      const header = request.headers.authorization;
      if (typeof header !== 'string' || !header.startsWith('Bearer ')) return Promise.resolve(undefined);
      const given = createHash('sha256').update(header.slice('Bearer '.length).trim()).digest();
      return Promise.resolve(timingSafeEqual(given, expected) ? principal : undefined);
    },
  };
}
