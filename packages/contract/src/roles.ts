/** Roles, from most to least powerful. `operator` runs pools and workstations but not auth config. */
export const ROLES = ['admin', 'operator', 'auditor', 'user'] as const;
