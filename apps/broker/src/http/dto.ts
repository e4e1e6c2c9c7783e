import type { ApiTokenRow } from '../domain/identity/sessions.repository.ts';
import type { UserWithGroups } from '../domain/identity/users.repository.ts';
import type { GroupWithCount } from '../domain/identity/groups.repository.ts';
import type { AuditRow } from '../domain/audit/audit.repository.ts';
import type { Role } from '@stagedoor/contract';

/** Rows → API shapes. Only what is listed here leaves the broker: no hash or secret column can leak. */
export const iso = (d: Date) => d.toISOString();
export const isoOrNull = (d: Date | null) => (d ? d.toISOString() : null);

export function userDto(u: UserWithGroups) {
  return {
    id: u.id,
    username: u.username,
    displayName: u.displayName,
    email: u.email,
    role: u.role as Role,
    disabled: u.disabled,
    authServerId: u.authServerId,
    groups: u.groups,
    lastLoginAt: isoOrNull(u.lastLoginAt),
    createdAt: iso(u.createdAt),
    updatedAt: iso(u.updatedAt),
  };
}

export function groupDto(g: GroupWithCount) {
  return { id: g.id, name: g.name, description: g.description, source: g.source, memberCount: g.memberCount, createdAt: iso(g.createdAt), updatedAt: iso(g.updatedAt) };
}

export function apiTokenDto(t: ApiTokenRow) {
  return { id: t.id, name: t.name, prefix: t.prefix, createdAt: iso(t.createdAt), lastUsedAt: isoOrNull(t.lastUsedAt), expiresAt: isoOrNull(t.expiresAt) };
}

export function auditDto(a: AuditRow) {
  return {
    id: a.id,
    at: iso(a.at),
    actorUserId: a.actorUserId,
    actorName: a.actorName,
    sourceAddress: a.sourceAddress,
    action: a.action,
    targetType: a.targetType,
    targetId: a.targetId,
    outcome: a.outcome as 'success' | 'failure' | 'denied',
    reason: a.reason,
    details: a.details,
    requestId: a.requestId,
  };
}
