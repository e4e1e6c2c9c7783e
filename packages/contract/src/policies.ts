import { z } from 'zod';
import { Timestamp, Uuid } from './common.ts';
import { Protocol } from './providers.ts';
import { TimeZone } from './pools.ts';

const Name = z.string().trim().min(1).max(128).regex(/^[^\n\r\t]+$/, 'must be one line');
const Port = z.number().int().min(1).max(65535);
/** Seconds; -1 means never. */
const Delay = z.number().int().min(-1).max(30 * 86400);

export const DEFAULT_PORTS: Record<z.infer<typeof Protocol>, number> = { rdp: 3389, dcv: 8443, vnc: 5900, ssh: 22, pcoip: 4172 };

/** The protocols a browser tab can show (issue 17): noVNC, xterm.js through the gateway's SSH client, IronRDP. */
export const BROWSER_PROTOCOLS: readonly string[] = ['vnc', 'ssh', 'rdp'];

export const ProtocolPlanEntry = z.strictObject({
  protocol: Protocol,
  port: Port.optional().describe('default: the protocol\'s usual port (rdp 3389, dcv 8443, vnc 5900, ssh 22, pcoip 4172)'),
  viaGateway: z.boolean().default(false),
  gatewayMode: z
    .enum(['portForward', 'routed'])
    .default('portForward')
    .describe('with viaGateway: `portForward` (a port per grant, any client) or `routed` (fixed ports behind a load balancer, a secret per grant; rdp by routing token, ssh by jump host, dcv by TLS SNI, vnc/pcoip by the HTTPS tunnel — docs/gateway.md)'),
  reconnectWindowSeconds: z.number().int().min(0).max(86_400).default(600).describe('routed mode: the same client may reconnect with the same grant this long after its last session ended, while the assignment lives (0: single use)'),
  browser: z
    .boolean()
    .default(false)
    .describe('offer "Open in browser" in the portal (vnc, ssh, rdp; needs viaGateway and gatewayMode routed: the browser reaches the desktop through the gateway\'s HTTPS tunnel) — docs/web.md'),
  clientOptions: z
    .strictObject({
      fileLines: z.array(z.string().max(512).regex(/^[^\r\n]*$/, 'one line each')).max(100).optional().describe('lines for the .rdp/.dcv/.vnc file, e.g. "use multimon:i:1": a line replaces the default line of the same key, others are added; where the client connects cannot be changed'),
      username: z.enum(['user', 'none']).optional().describe('put the Stagedoor username in the file (default user)'),
      viewOnly: z.boolean().optional().describe('browser sessions (vnc): the viewer sends no keyboard or mouse input (default false)'),
    })
    .optional(),
});
export const ProtocolPlanBody = z.strictObject({
  name: Name,
  description: z.string().max(2000).nullable().optional(),
  protocols: z
    .array(ProtocolPlanEntry)
    .min(1)
    .max(10)
    .refine((ps) => new Set(ps.map((p) => p.protocol)).size === ps.length, 'each protocol at most once')
    .superRefine((ps, ctx) => {
      // Routed is a gateway mode: without the gateway there is nothing to route.
      ps.forEach((p, i) => {
        if (p.gatewayMode === 'routed' && !p.viaGateway) ctx.addIssue({ code: 'custom', path: [i, 'gatewayMode'], message: 'gatewayMode "routed" needs viaGateway: true (the routed listeners are the gateway\'s)' });
        // The browser reaches the desktop only through the gateway's HTTPS tunnel, which routed grants open.
        if (p.browser && !(p.viaGateway && p.gatewayMode === 'routed')) ctx.addIssue({ code: 'custom', path: [i, 'browser'], message: 'browser: true needs viaGateway: true and gatewayMode "routed" (the browser connects through the gateway\'s HTTPS tunnel)' });
        if (p.browser && !BROWSER_PROTOCOLS.includes(p.protocol)) ctx.addIssue({ code: 'custom', path: [i, 'browser'], message: `browser: true is for ${BROWSER_PROTOCOLS.join(', ')} (there is no browser client for ${p.protocol})` });
      });
    }),
});
export const ProtocolPlan = ProtocolPlanBody.extend({ id: Uuid, description: z.string().nullable(), protocols: z.array(ProtocolPlanEntry.extend({ port: Port })), createdAt: Timestamp, updatedAt: Timestamp });

export const PowerActionName = z.enum(['none', 'stop', 'hibernate', 'terminate', 'restart']);
const Weekday = z.enum(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
const HourMinute = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be HH:MM (24-hour)');
export const PowerPlanBody = z.strictObject({
  name: Name,
  description: z.string().max(2000).nullable().optional(),
  onDisconnect: z.strictObject({ action: PowerActionName, delaySeconds: Delay }).default({ action: 'none', delaySeconds: -1 }),
  onLogout: z.strictObject({ action: PowerActionName, delaySeconds: Delay }).default({ action: 'none', delaySeconds: -1 }),
  onIdle: z.strictObject({ action: PowerActionName, delaySeconds: Delay }).default({ action: 'none', delaySeconds: -1 }),
  scheduleRules: z
    .array(z.strictObject({ days: z.array(Weekday).min(1), at: HourMinute, action: z.enum(['stop', 'hibernate', 'terminate', 'restart']), target: z.enum(['unassigned', 'no-session']) }))
    .max(50)
    .default([]),
  timeZone: TimeZone.default('UTC'),
});
export const PowerPlan = PowerPlanBody.extend({ id: Uuid, description: z.string().nullable(), createdAt: Timestamp, updatedAt: Timestamp });

export const ReleasePlanBody = z.strictObject({
  name: Name,
  description: z.string().max(2000).nullable().optional(),
  releaseOnLogout: z.boolean().default(false),
  releaseAfterDisconnectSeconds: Delay.default(-1),
  releaseOnIdleSeconds: Delay.default(-1),
  forceLogout: z.boolean().default(false),
  warnSeconds: z.number().int().min(0).max(3600).default(0),
  warnMessage: z.string().max(1000).nullable().optional(),
});
export const ReleasePlan = ReleasePlanBody.extend({ id: Uuid, description: z.string().nullable(), warnMessage: z.string().nullable(), createdAt: Timestamp, updatedAt: Timestamp });

export const PolicyPoolEntry = z.strictObject({ poolId: Uuid, desktops: z.number().int().min(1).max(20).default(1) });
export const PolicyBody = z.strictObject({
  name: Name,
  description: z.string().max(2000).nullable().optional(),
  position: z.number().int().min(1).max(100000).optional().describe('order of evaluation; first match wins; default: last'),
  enabled: z.boolean().default(true),
  groupIds: z.array(Uuid).min(1, 'a policy must name at least one group').max(100),
  pools: z.array(PolicyPoolEntry).min(1, 'a policy must offer at least one pool').max(50).refine((ps) => new Set(ps.map((p) => p.poolId)).size === ps.length, 'each pool at most once'),
  assignmentMode: z.enum(['floating', 'persistent']).default('floating'),
  startStoppedOnLogin: z.boolean().default(true),
  launchOnLogin: z.boolean().default(false),
  prestartPersistent: z.boolean().default(false).describe('persistent assignments: start the user\'s own machine shortly before their usual arrival when their history says they are likely to come'),
  allowRestart: z.boolean().default(false),
  maxSessionMinutes: z.number().int().min(1).max(525600).nullable().default(null).describe('longest a session may last, from when its connection is brokered; the gateway closes it then (null: no cap)'),
  protocolPlanId: Uuid.nullable().default(null),
  powerPlanId: Uuid.nullable().default(null),
  releasePlanId: Uuid.nullable().default(null),
});
export const UpdatePolicy = PolicyBody.partial().strict();
export const Policy = z.object({
  id: Uuid,
  name: z.string(),
  description: z.string().nullable(),
  position: z.number().int(),
  enabled: z.boolean(),
  groupIds: z.array(Uuid),
  groups: z.array(z.object({ id: Uuid, name: z.string() })).describe('the groups it applies to, by name (the same as groupIds)').optional(),
  pools: z.array(z.object({ poolId: Uuid, name: z.string().optional(), desktops: z.number().int() })),
  assignmentMode: z.enum(['floating', 'persistent']),
  startStoppedOnLogin: z.boolean(),
  launchOnLogin: z.boolean(),
  prestartPersistent: z.boolean(),
  allowRestart: z.boolean(),
  maxSessionMinutes: z.number().int().nullable(),
  protocolPlanId: Uuid.nullable(),
  powerPlanId: Uuid.nullable(),
  releasePlanId: Uuid.nullable(),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export const ReorderPolicies = z.strictObject({ ids: z.array(Uuid).min(1).max(1000).describe('every policy id, in the new order') });
