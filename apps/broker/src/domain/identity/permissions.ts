import type { Role } from '@stagedoor/contract';

/**
 * What each role may do. Routes name the permission they need; this table is the only place that
 * knows which role has it. `operator` runs pools and workstations but not identity or auth config;
 * `auditor` reads everything and changes nothing.
 */
export const PERMISSIONS = [
  'users:read',
  'users:write',
  'groups:read',
  'groups:write',
  'audit:read',
  // Auth servers hold directory and RADIUS secrets: admins change them, auditors read them, operators neither.
  'auth-servers:read',
  'auth-servers:write',
  'providers:read',
  'providers:write',
  'workstations:read',
  'workstations:write',
  // Pools launch and terminate cloud machines: admins and operators change them, auditors read them.
  'pools:read',
  'pools:write',
  'gateways:read',
  'gateways:write',
  // Policies decide who may use what: admins change them; operators and auditors read them.
  'policies:read',
  'policies:write',
  'connections:read',
  'connections:write',
  // The price table prices the cost report: admins change it; operators and auditors read it.
  'prices:read',
  'prices:write',
  'reports:read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const GRANTS: Record<Role, readonly Permission[]> = {
  admin: PERMISSIONS,
  // Providers hold cloud credentials: operators see them but only admins change them.
  operator: ['users:read', 'groups:read', 'audit:read', 'providers:read', 'workstations:read', 'workstations:write', 'pools:read', 'pools:write', 'gateways:read', 'gateways:write', 'policies:read', 'connections:read', 'connections:write', 'prices:read', 'reports:read'],
  auditor: PERMISSIONS.filter((p) => p.endsWith(':read')),
  user: [],
};

export function roleHas(role: Role, permission: Permission): boolean {
  return GRANTS[role].includes(permission);
}
