import { z } from 'zod';
import { Timestamp, Uuid } from './common.ts';

/**
 * The workstation agent's protocol (Linux `stagedoor agent`, Windows `stagedoor-agent.ps1`).
 * Every call carries `Authorization: Bearer <agent token>`: the token decides which workstation
 * the report is about, so an agent can only ever speak for its own machine.
 */
export const AGENT_EVENTS_PATH = '/api/v1/agent/events';

export const AGENT_EVENT_TYPES = ['login', 'logout', 'lock', 'unlock', 'idle', 'active', 'disconnect', 'reconnect', 'heartbeat'] as const;
export const AgentEventType = z.enum(AGENT_EVENT_TYPES);
export type AgentEventType = z.infer<typeof AgentEventType>;

/** The OS user name as the agent sees it (`DOMAIN\\user`, `user@realm`, `user`). */
const OsUser = z.string().min(1).max(256);

export const AgentEvent = z.strictObject({
  type: AgentEventType,
  /** When the agent saw it (its own clock, for the audit trail; the broker times plans by its own clock). */
  at: Timestamp.optional(),
  user: OsUser.nullable().optional(),
  /** `idle`: seconds without keyboard or mouse input so far. */
  idleSeconds: z.number().int().min(0).max(10 * 365 * 86400).optional(),
  /** The OS session it is about (logind session id, utmp line, WTS session id), for the log. */
  session: z.string().max(128).nullable().optional(),
});
export type AgentEvent = z.infer<typeof AgentEvent>;

export const AgentReport = z.strictObject({
  agentVersion: z.string().min(1).max(64),
  os: z.enum(['linux', 'windows', 'other']).default('other'),
  hostname: z.string().max(255).optional(),
  /** In the order they happened; an agent that could not reach the broker sends what it queued (at most 100). */
  events: z.array(AgentEvent).max(100).default([]),
});
export type AgentReport = z.input<typeof AgentReport>;

export const AgentNoticeView = z.object({
  id: z.string(),
  kind: z.enum(['warn', 'logout']).describe('warn: show the message; logout: end the user session now'),
  message: z.string(),
  logoutAt: Timestamp,
  createdAt: Timestamp,
});
export type AgentNoticeView = z.infer<typeof AgentNoticeView>;

export const AgentReportResult = z.object({
  workstationId: Uuid,
  workstationName: z.string(),
  sessionState: z.enum(['unknown', 'none', 'active', 'locked', 'idle', 'disconnected']),
  accepted: z.number().int(),
  /** Report at least this often (seconds), even when nothing changed. */
  heartbeatSeconds: z.number().int(),
  /** What the agent must tell its user (a release plan's warning, then the forced logout), or null. */
  notice: AgentNoticeView.nullable(),
});
export type AgentReportResult = z.infer<typeof AgentReportResult>;

/** `POST /api/v1/workstations/{id}/agent-token`: a new token, shown once; the old one stops working. */
export const AgentTokenResult = z.object({
  workstationId: Uuid,
  token: z.string().describe('shown once: put it in the agent configuration (STAGEDOOR_AGENT_TOKEN or the token file)'),
});
