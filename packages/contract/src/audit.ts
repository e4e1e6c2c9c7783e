import { z } from 'zod';
import { Page, Timestamp, Uuid } from './common.ts';

export const AuditEvent = z.object({
  id: z.number().int(),
  at: Timestamp,
  actorUserId: Uuid.nullable(),
  actorName: z.string().nullable(),
  sourceAddress: z.string().nullable(),
  action: z.string(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  targetName: z.string().nullable().optional().describe("the target's name now (or as recorded, if it is gone)"),
  subjectName: z.string().nullable().optional().describe('the user the action was about when that is not the target (details.userId), e.g. the member added to a group'),
  outcome: z.enum(['success', 'failure', 'denied']),
  reason: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  requestId: z.string().nullable(),
});
export const ListAuditQuery = Page.extend({
  action: z.string().max(200).optional().describe('exact action, or a prefix ending in * (e.g. user.*)'),
  actor: z.string().max(256).optional().describe('actor username'),
  outcome: z.enum(['success', 'failure', 'denied']).optional(),
  targetId: z.string().max(200).optional(),
  from: Timestamp.optional(),
  to: Timestamp.optional(),
});
