import type { ApiTokenView } from '../domain/identity/auth.service.ts';
import type { UserWithGroups } from '../domain/identity/users.repository.ts';
import type { GroupWithCount } from '../domain/identity/groups.repository.ts';
import type { AuditRow } from '../domain/audit/audit.repository.ts';
import type { Role } from '@stagedoor/contract';
import type { ProviderRow } from '../domain/providers/provider-registry.ts';
import type { WorkstationRow } from '../domain/workstations/workstations.repository.ts';
import { availableActions } from '../domain/workstations/actions.ts';
import type { HealthSource, PowerState } from '../db/schema/providers.ts';
import type { PolicyWithLinks } from '../domain/policies/policies.repository.ts';
import type { PlanKind, PowerPlanRow, ProtocolPlanRow, ReleasePlanRow } from '../domain/plans/plans.service.ts';
import type { ConnectionView } from '../domain/connections/connection-status.ts';

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

export function apiTokenDto(t: ApiTokenView) {
  return { id: t.id, name: t.name, prefix: t.prefix, createdAt: iso(t.createdAt), lastUsedAt: isoOrNull(t.lastUsedAt), expiresAt: iso(t.expiresAt) };
}

export function auditDto(a: AuditRow & { targetName?: string | null; subjectName?: string | null }) {
  return {
    targetName: a.targetName ?? null,
    subjectName: a.subjectName ?? null,
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

export function providerDto(p: ProviderRow) {
  return {
    id: p.id,
    name: p.name,
    kind: p.kind as 'aws-ec2' | 'static',
    region: p.region,
    endpoint: p.endpoint,
    // The secret itself never leaves the broker; the API says only whether one is stored.
    credentials: { mode: p.credentialsMode as 'access-key' | 'default-chain' | 'none', accessKeyId: p.accessKeyId, hasSecret: p.secretCiphertext !== null },
    tagFilter: p.tagFilter,
    syncIntervalSeconds: p.syncIntervalSeconds,
    enabled: p.enabled,
    lastSync: p.lastSyncAt
      ? { at: iso(p.lastSyncAt), status: (p.lastSyncStatus ?? 'error') as 'ok' | 'error', message: p.lastSyncMessage, counts: p.lastSyncCounts ?? null }
      : null,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
  };
}

/** A machine as the API shows it; `providerKind` decides `availableActions`. */
export function workstationDto(w: WorkstationRow, providerKind: string) {
  return {
    id: w.id,
    providerId: w.providerId,
    externalId: w.externalId,
    name: w.name,
    privateAddress: w.privateAddress,
    dnsName: w.dnsName,
    instanceType: w.instanceType,
    availabilityZone: w.availabilityZone,
    subnetId: w.subnetId,
    imageId: w.imageId,
    tags: w.tags,
    powerState: w.powerState as PowerState,
    powerStateChangedAt: iso(w.powerStateChangedAt),
    health: w.health as 'unknown' | 'healthy' | 'unhealthy',
    healthSource: w.healthSource as HealthSource | null,
    healthCheckedAt: isoOrNull(w.healthCheckedAt),
    protocols: w.protocols,
    poolId: w.poolId,
    maintenance: w.maintenance,
    launchedByPoolId: w.launchedByPoolId,
    agentLastSeenAt: isoOrNull(w.agentLastSeenAt),
    lastActivityAt: isoOrNull(w.lastActivityAt),
    agentSessionState: w.agentSessionState as 'unknown' | 'none' | 'active' | 'locked' | 'idle' | 'disconnected',
    agentSessionUser: w.agentSessionUser,
    agentVersion: w.agentVersion,
    availableActions: availableActions(providerKind, w),
    createdAt: iso(w.createdAt),
    updatedAt: iso(w.updatedAt),
  };
}

export function policyDto(p: PolicyWithLinks) {
  return {
    id: p.id,
    name: p.name,
    description: p.description,
    position: p.position,
    enabled: p.enabled,
    groupIds: p.groupIds,
    groups: p.groupIds.map((id) => ({ id, name: p.linkNames?.[id] ?? id })),
    pools: p.pools.map((x) => ({ ...x, name: p.linkNames?.[x.poolId] })),
    assignmentMode: p.assignmentMode as 'floating' | 'persistent',
    startStoppedOnLogin: p.startStoppedOnLogin,
    launchOnLogin: p.launchOnLogin,
    prestartPersistent: p.prestartPersistent,
    allowRestart: p.allowRestart,
    maxSessionMinutes: p.maxSessionMinutes,
    protocolPlanId: p.protocolPlanId,
    powerPlanId: p.powerPlanId,
    releasePlanId: p.releasePlanId,
    createdAt: iso(p.createdAt),
    updatedAt: iso(p.updatedAt),
  };
}

export function planDto(kind: PlanKind, row: ProtocolPlanRow | PowerPlanRow | ReleasePlanRow) {
  const common = { id: row.id, name: row.name, description: row.description, createdAt: iso(row.createdAt), updatedAt: iso(row.updatedAt) };
  if (kind === 'power') {
    const r = row as PowerPlanRow;
    return {
      ...common,
      onDisconnect: { action: r.onDisconnectAction, delaySeconds: r.onDisconnectDelaySeconds },
      onLogout: { action: r.onLogoutAction, delaySeconds: r.onLogoutDelaySeconds },
      onIdle: { action: r.onIdleAction, delaySeconds: r.onIdleDelaySeconds },
      scheduleRules: r.scheduleRules,
      timeZone: r.timeZone,
    };
  }
  if (kind === 'protocol') return { ...common, protocols: (row as ProtocolPlanRow).protocols };
  const { createdAt: _c, updatedAt: _u, ...rest } = row as ReleasePlanRow;
  return { ...rest, ...common };
}

export function connectionDto(v: ConnectionView) {
  const c = v.connection;
  return {
    id: c.id,
    state: c.state as 'starting' | 'ready' | 'connected' | 'closed' | 'failed',
    poolId: v.poolId,
    workstation: { id: c.workstationId ?? v.workstation?.id ?? '00000000-0000-0000-0000-000000000000', name: v.workstation?.name ?? '(gone)', powerState: (v.workstation?.powerState ?? 'terminated') as PowerState },
    protocol: c.protocol as 'rdp',
    progress: v.progress,
    grant: v.grant ? { ...v.grant, connectBy: iso(v.grant.connectBy), reconnectUntil: isoOrNull(v.grant.reconnectUntil) } : null,
    instructions: v.instructions ? { ...v.instructions, connectBy: isoOrNull(v.instructions.connectBy) } : null,
    requestedAt: iso(c.requestedAt),
    readyAt: isoOrNull(c.readyAt),
    closedAt: isoOrNull(c.closedAt),
    endReason: c.endReason,
  };
}
