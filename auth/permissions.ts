/**
 * The permission matrix: every role, every permission, in one place. Routes declare the
 * permission they need; docs/security-model.md documents this table and a test walks every
 * role × route against it. Data scope (which sites and units a user sees) is enforced in the
 * database on top of this (row-level security), not here.
 */

export const roles = ['admin', 'technician', 'kitchen_manager', 'collector', 'auditor'] as const;
export type Role = (typeof roles)[number];

export const permissions = [
  'sites:read',
  'sites:write',
  'devices:read',
  'devices:write',
  // Remote configuration and commands (device-config/, ADR 0013): fleet roles only.
  'devices:configure',
  'enrolment:create',
  'certificates:read',
  'certificates:issue',
  'certificates:revoke',
  'quarantine:read',
  'quarantine:replay',
  'readings:read',
  'alerts:read',
  'alerts:ack',
  'alerts:configure',
  'dashboard:digesters',
  'dashboard:collection',
  'dashboard:fleet',
  // Field records (field/): what went into a digester; a collection point emptied.
  'feedings:write',
  'collections:write',
  'firmware:read',
  'firmware:write',
  'firmware:approve',
  'broker:read',
  'audit:read',
  'users:read',
  'users:write',
  // Every signed-in user: their own session and account data (export).
  'account:self',
  // Prometheus scraping of /metrics (use an API token).
  'metrics:read',
] as const;
export type Permission = (typeof permissions)[number];

const technician: Permission[] = [
  'sites:read',
  'sites:write',
  'devices:read',
  'devices:write',
  'devices:configure',
  'enrolment:create',
  'certificates:read',
  'certificates:issue',
  'certificates:revoke',
  'quarantine:read',
  'quarantine:replay',
  'readings:read',
  'alerts:read',
  'alerts:ack',
  'alerts:configure',
  'dashboard:digesters',
  'dashboard:collection',
  'dashboard:fleet',
  // A technician covers the kitchen manager and the collector (tokens, db role cover): their field work too.
  'feedings:write',
  'collections:write',
  'firmware:read',
  'firmware:write',
  'firmware:approve',
  'broker:read',
  'account:self',
  'metrics:read',
];

export const rolePermissions: Readonly<Record<Role, ReadonlySet<Permission>>> = Object.freeze({
  admin: new Set(permissions),
  technician: new Set(technician),
  // Scoped in the database to the biodigesters assigned to them.
  kitchen_manager: new Set<Permission>([
    'sites:read',
    'devices:read',
    'readings:read',
    'alerts:read',
    'alerts:ack',
    'dashboard:digesters',
    'feedings:write',
    'account:self',
  ]),
  // Scoped in the database to the collection points assigned to them.
  collector: new Set<Permission>([
    'sites:read',
    'devices:read',
    'readings:read',
    'alerts:read',
    'dashboard:collection',
    'collections:write',
    'account:self',
  ]),
  auditor: new Set<Permission>(['audit:read', 'certificates:read', 'account:self']),
});

export function can(role: Role, permission: Permission): boolean {
  return rolePermissions[role].has(permission);
}

/** True when `holder` has every permission of `role`: a token acting as `role` may belong to `holder`. */
export function covers(holder: Role, role: Role): boolean {
  for (const p of rolePermissions[role]) if (!rolePermissions[holder].has(p)) return false;
  return true;
}
