import type { Role } from '@stagedoor/contract';

/**
 * What each role may do. Routes name the permission they need; this table is the only place that
 * knows which role has it. `operator` runs pools and workstations but not identity or auth config;
 * `auditor` reads everything and changes nothing.
 */
export const PERMISSIONS = ['users:read', 'users:write', 'groups:read', 'groups:write', 'audit:read'] as const;
export type Permission = (typeof PERMISSIONS)[number];

const GRANTS: Record<Role, readonly Permission[]> = {
  admin: PERMISSIONS,
  operator: ['users:read', 'groups:read', 'audit:read'],
  auditor: PERMISSIONS.filter((p) => p.endsWith(':read')),
  user: [],
};

export function roleHas(role: Role, permission: Permission): boolean {
  return GRANTS[role].includes(permission);
}
