import { z } from 'zod';

export const Health = z.object({ status: z.literal('ok') });
export const Readiness = z.object({
  status: z.enum(['ready', 'not_ready']),
  database: z.object({
    driver: z.enum(['pglite', 'postgres']),
    reachable: z.boolean(),
    migrations: z.object({ expected: z.number().int(), applied: z.number().int(), upToDate: z.boolean() }).nullable(),
    error: z.string().optional(),
  }),
  node: z.string(),
});
