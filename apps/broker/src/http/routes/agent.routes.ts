import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { AGENT_EVENTS_PATH, AgentReport, AgentReportResult, AgentTokenResult, ErrorBody, IdParams } from '@stagedoor/contract';
import { UnauthenticatedError } from '../../domain/errors.ts';
import type { WorkstationRow } from '../../domain/workstations/workstations.repository.ts';
import type { Services } from '../../services.ts';
import { actorOf } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody };
/** Reports per agent token per minute (per node): an agent reports every few seconds at most. */
const AGENT_RATE_PER_MINUTE = 120;

/**
 * The workstation agent's API. Authenticated by the machine's agent token
 * (`Authorization: Bearer sda_…`), looked up by its hash: the token alone decides which machine a
 * report is about, so an agent can never speak for another machine.
 */
export function agentRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { activity } = deps.services;
  const agents = new WeakMap<FastifyRequest, WorkstationRow>();

  r.post(
    AGENT_EVENTS_PATH,
    {
      config: {
        access: 'public',
        rateLimit: {
          max: AGENT_RATE_PER_MINUTE,
          timeWindow: 60_000,
          // Per token (hashed: the key lives in memory), else per address.
          keyGenerator: (req: FastifyRequest) => {
            const h = req.headers.authorization;
            return h ? `agent:${createHash('sha256').update(h).digest('hex')}` : `agent-ip:${req.ip}`;
          },
        },
      },
      schema: {
        tags: ['agent'],
        summary: 'Workstation agent: report session events (login, logout, lock, unlock, idle, active, heartbeat); Authorization: Bearer <agent token>',
        security: [{ agentToken: [] }],
        body: AgentReport,
        response: { 200: AgentReportResult, ...errors },
      },
      preValidation: async (request) => {
        const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
        if (!match) throw new UnauthenticatedError('the agent must send Authorization: Bearer <agent token>');
        agents.set(request, await activity.authenticateAgent(match[1]!));
      },
    },
    async (request) => {
      const ws = agents.get(request);
      if (!ws) throw new UnauthenticatedError();
      return activity.agentReport(ws, request.body, request.ip ?? null);
    },
  );

  r.post(
    '/api/v1/workstations/:id/agent-token',
    {
      config: { access: 'workstations:write' },
      schema: {
        tags: ['workstations'],
        summary: 'Issue a new agent token for the workstation (shown once; the previous token stops working; audited)',
        params: IdParams,
        response: { 200: AgentTokenResult, ...errors },
      },
    },
    async (request) => activity.rotateAgentToken(actorOf(request), request.params.id),
  );
}
