import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CostReport, CostReportQuery, ErrorBody, IdParams, RunningQuery, RunningWorkstation } from '@stagedoor/contract';
import type { RunningRow } from '../../domain/reports/reports.repository.ts';
import type { Verdict } from '../../domain/reports/reports.service.ts';
import type { Services } from '../../services.ts';
import { iso, isoOrNull } from '../dto.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody };

function runningDto(w: RunningRow & { verdict: Verdict; why: string }) {
  return {
    id: w.id,
    name: w.name,
    powerState: w.powerState,
    runningSince: iso(w.powerStateChangedAt),
    poolId: w.poolId,
    poolName: w.poolName,
    instanceType: w.instanceType,
    assignedTo: w.assignment ? { ...w.assignment, since: iso(w.assignment.since) } : null,
    agentSessionState: w.agentSessionState,
    lastActivityAt: isoOrNull(w.lastActivityAt),
    sessions: w.sessions.map((s) => ({ ...s, requestedAt: iso(s.requestedAt), connectedAt: isoOrNull(s.connectedAt) })),
    timers: w.timers.map((t) => ({ ...t, dueAt: iso(t.dueAt) })),
    verdict: w.verdict,
    why: w.why,
  };
}

export function reportsRoutes(app: FastifyInstance, deps: { services: Services }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { reports } = deps.services;
  const tags = ['reports'];

  r.get(
    '/api/v1/reports/cost',
    {
      config: { access: 'reports:read' },
      schema: { tags, summary: 'Running and stopped hours, cost and hours saved against always-on, per pool, user or instance type (definitions: docs/cost.md)', querystring: CostReportQuery, response: { 200: CostReport, ...errors } },
    },
    async (request) => {
      const q = request.query;
      const report = await reports.cost({ from: new Date(q.from), to: new Date(q.to), groupBy: q.groupBy });
      return { from: iso(report.from), to: iso(report.to), generatedAt: iso(report.generatedAt), groupBy: report.groupBy, groups: report.groups, total: report.total };
    },
  );

  r.get(
    '/api/v1/reports/running',
    {
      config: { access: 'workstations:read' },
      schema: { tags, summary: 'Why is it still running? Every running or booting machine with its live sessions, pending power/release timers and a verdict', querystring: RunningQuery, response: { 200: z.object({ items: z.array(RunningWorkstation), total: z.number().int(), limit: z.number().int(), offset: z.number().int() }), ...errors } },
    },
    async (request) => {
      const { limit, offset, ...filter } = request.query;
      const page = await reports.running(filter, limit, offset);
      return { items: page.items.map(runningDto), total: page.total, limit, offset };
    },
  );

  r.get(
    '/api/v1/reports/running/:id',
    { config: { access: 'workstations:read' }, schema: { tags, summary: 'Why is this machine still running? (404 when it is not running or booting)', params: IdParams, response: { 200: RunningWorkstation, ...errors } } },
    async (request) => runningDto(await reports.runningOne(request.params.id)),
  );
}
