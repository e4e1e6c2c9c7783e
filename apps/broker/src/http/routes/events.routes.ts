import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, type Role } from '@stagedoor/contract';
import { roleHas } from '../../domain/identity/permissions.ts';
import type { Services } from '../../services.ts';
import { SESSION_COOKIE } from '../auth-hook.ts';
import { sendError } from '../error-handler.ts';
import type { UserConnectionRow } from '../../domain/connections/live-sessions.repository.ts';
import { connectionDto, iso, isoOrNull } from '../dto.ts';

/** How often each stream looks at the database. Modest: every open console costs a few queries per tick. */
export const EVENTS_INTERVAL_MS = 2_000;
/** Every this many ticks: a keep-alive comment (the session and role are checked on every tick). */
const KEEP_ALIVE_EVERY_TICKS = 15;
/** Open streams per user on one node: a few tabs are normal; hundreds would only load the database. */
export const MAX_STREAMS_PER_USER = 10;

/**
 * Live updates for the console and the portal as server-sent events. Each stream polls the
 * database (the only shared state, so it works the same on every broker node) and sends a topic
 * only when its value changed: `connections` (the caller's own live connections: progress while
 * starting, and the instructions of the pass that found it ready) and `dashboard` (pools, gateways, live-session count — each only when
 * the role may read it). The client refetches nothing; it renders what arrives. Every tick checks the
 * session (or token) and the user's current role before sending: a disabled or signed-out user's stream
 * ends, a demoted user's narrows, before anything read after the change goes out.
 */
export function eventsRoutes(app: FastifyInstance, deps: { services: Services; intervalMs?: number }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { auth, connectionStatus, liveSessions, pools, gateways } = deps.services;
  const intervalMs = deps.intervalMs ?? EVENTS_INTERVAL_MS;
  const open = new Set<(shutdown?: boolean) => void>();
  const perUser = new Map<string, number>();
  // Streams never end on their own: close them before the server waits for its connections.
  app.addHook('preClose', async () => {
    for (const end of [...open]) end(true);
  });

  r.get(
    '/api/v1/events',
    {
      config: { access: 'user', stream: true },
      schema: {
        tags: ['events'],
        summary: 'Server-sent events (text/event-stream, session cookie): `connections` and, for staff roles, `dashboard`; each event is the full current value, sent when it changes',
        response: { 200: z.string().describe('an event stream'), 401: ErrorBody, 403: ErrorBody, 429: ErrorBody },
      },
    },
    async (request, reply) => {
      const user = request.auth!.user;
      // Re-read on every tick: a demoted user's stream narrows to what the new role may read at once.
      let role = user.role as Role;
      // As the auth hook: a bearer token wins over the cookie. Either is checked again on every tick.
      const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
      const cookie = bearer ? undefined : request.cookies?.[SESSION_COOKIE];
      const credential = bearer ? { bearer } : cookie ? { cookie } : null;
      if ((perUser.get(user.id) ?? 0) >= MAX_STREAMS_PER_USER) return sendError(reply, 429, 'too_many_streams', `at most ${MAX_STREAMS_PER_USER} event streams per user on one broker; close another tab`);
      const snapshots = {
        connections: async () => {
          const rows = await liveSessions.ofUser(user.id);
          return { items: await Promise.all(rows.map(async (r) => (r.connection.state === 'starting' ? connectionDto(await connectionStatus.describe(r.connection, user.username)) : settledDto(r)))) };
        },
        dashboard: async (as: Role) => ({
          pools: roleHas(as, 'pools:read') ? (await pools.list({}, 500, 0)).items.map(poolSummary) : null,
          gateways: roleHas(as, 'gateways:read') ? (await gateways.list({}, 500, 0)).items.map(gatewaySummary) : null,
          liveSessions: roleHas(as, 'connections:read') ? await liveSessions.count() : null,
        }),
      };

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
        'x-request-id': String(request.id),
        'x-accel-buffering': 'no',
        // Never reused: when the stream ends, the socket goes too (or a closing server waits on it).
        connection: 'close',
      });
      res.write('retry: 3000\n\n');

      const last = new Map<string, string>();
      let ticks = 0;
      let timer: NodeJS.Timeout | undefined;
      let closed = false;
      const end = (shutdown = false) => {
        if (closed) return;
        closed = true;
        clearTimeout(timer);
        open.delete(end);
        perUser.set(user.id, (perUser.get(user.id) ?? 1) - 1);
        if (!perUser.get(user.id)) perUser.delete(user.id);
        res.end();
        // Shutting down: a client that stopped reading (an aborted fetch) must not hold the server open.
        if (shutdown) res.socket?.destroy();
      };
      open.add(end);
      perUser.set(user.id, (perUser.get(user.id) ?? 0) + 1);
      // The response's close, not the request's: the request is long complete when the client goes away.
      res.on('close', () => end());

      const tick = async () => {
        let again = intervalMs;
        try {
          if (++ticks % KEEP_ALIVE_EVERY_TICKS === 0) res.write(': keep-alive\n\n');
          const readAs = role;
          const values: [string, string][] = [['connections', JSON.stringify(await snapshots.connections())]];
          // Staff get the dashboard; a user demoted from staff gets it once more, empty, so the page clears it.
          if (readAs !== 'user' || last.has('dashboard')) values.push(['dashboard', JSON.stringify(await snapshots.dashboard(readAs))]);
          // Checked after reading and before sending: whatever committed before the values were read —
          // an ended session, a disabled account, a new role — decides whether they go out.
          const current = credential ? await auth.currentUser(credential) : null;
          if (closed) return;
          if (!current) {
            res.write('event: end\ndata: {"reason":"the session ended"}\n\n');
            return end();
          }
          role = current.role as Role;
          if (role !== readAs) again = 0; // read again at once with the new role; send nothing read with the old one
          else {
            for (const [topic, json] of values) {
              if (last.get(topic) === json) continue;
              last.set(topic, json);
              res.write(`event: ${topic}\ndata: ${json}\n\n`);
            }
          }
        } catch (err) {
          if (!closed) request.log.warn({ err }, 'event stream: a snapshot failed; trying again on the next tick');
        }
        if (!closed) timer = setTimeout(tick, again);
      };
      void tick();
    },
  );
}

/**
 * A ready or connected connection as the stream reports it: no instructions. Describing it would
 * issue a fresh gateway grant whenever the last one expired, so an idle open tab would keep a port
 * open for ever; the instructions come from the answer that made it ready, or from the user's own
 * GET /api/v1/connections/{id}.
 */
function settledDto(r: UserConnectionRow) {
  const c = r.connection;
  return {
    id: c.id,
    state: c.state as 'ready' | 'connected',
    poolId: r.poolId,
    workstation: { id: c.workstationId ?? '00000000-0000-0000-0000-000000000000', name: r.workstationName ?? '(gone)', powerState: (r.powerState ?? 'unknown') as 'running' },
    protocol: c.protocol as 'rdp',
    progress: { stage: 'ready' as const, percent: 100, message: c.state === 'connected' ? 'connected' : 'ready: open the file or run the command' },
    instructions: null,
    requestedAt: iso(c.requestedAt),
    readyAt: isoOrNull(c.readyAt),
    closedAt: isoOrNull(c.closedAt),
    endReason: c.endReason,
  };
}

type PoolItem = Awaited<ReturnType<Services['pools']['list']>>['items'][number];
function poolSummary({ pool: p, availability }: PoolItem) {
  return { id: p.id, name: p.name, availability, lastReconcileAt: isoOrNull(p.lastReconcileAt), lastReconcileOutcome: p.lastReconcileOutcome, lastReconcileError: p.lastReconcileError };
}

type GatewayItem = Awaited<ReturnType<Services['gateways']['list']>>['items'][number];
function gatewaySummary(g: GatewayItem) {
  return { id: g.id, name: g.name, cluster: g.cluster, status: g.status, health: g.health, liveGrants: g.liveGrants, lastSeenAt: isoOrNull(g.lastSeenAt) };
}
