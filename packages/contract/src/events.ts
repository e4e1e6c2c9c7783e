import { z } from 'zod';
import { Page, Timestamp, Uuid } from './common.ts';
import { Connection, ConnectionState } from './connections.ts';
import { Protocol } from './providers.ts';
import { PoolAvailability, ReconcileOutcome } from './pools.ts';

/** One live brokered connection, for the console's "live sessions". */
export const LiveSession = z.object({
  id: Uuid,
  state: ConnectionState,
  userId: Uuid,
  username: z.string(),
  workstationId: Uuid.nullable(),
  workstationName: z.string().nullable(),
  poolId: Uuid.nullable(),
  poolName: z.string().nullable(),
  protocol: Protocol,
  clientAddress: z.string().nullable(),
  requestedAt: Timestamp,
  readyAt: Timestamp.nullable(),
});
export const ListLiveSessionsQuery = Page.extend({ userId: Uuid.optional(), poolId: Uuid.optional() });

export const RestartResult = z.object({ workstationId: Uuid, previous: z.string(), current: z.string() });

/**
 * Server-sent events of `GET /api/v1/events`. Each is the full current value of its topic, sent
 * when it changes (never a delta): `dashboard` (staff roles), `connections` (the caller's own live
 * connections, with their progress and, once ready, their instructions).
 */
export const DashboardEvent = z.object({
  pools: z
    .array(z.object({ id: Uuid, name: z.string(), availability: PoolAvailability, lastReconcileAt: Timestamp.nullable(), lastReconcileOutcome: ReconcileOutcome.nullable(), lastReconcileError: z.string().nullable() }))
    .nullable()
    .describe('null when the role may not read pools'),
  gateways: z.array(z.object({ id: Uuid, name: z.string(), cluster: z.string(), status: z.string(), health: z.string(), liveGrants: z.number().int(), lastSeenAt: Timestamp.nullable() })).nullable(),
  liveSessions: z.number().int().nullable(),
});
export const ConnectionsEvent = z.object({ items: z.array(Connection) });
