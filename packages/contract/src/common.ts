import { z } from 'zod';

export const Uuid = z.uuid();
export const Timestamp = z.iso.datetime({ offset: true }).describe('RFC 3339 timestamp');

export const IdParams = z.strictObject({ id: Uuid });

/** Every error the API returns has this shape. */
export const ErrorBody = z
  .object({
    error: z.object({
      code: z.string().describe('stable machine-readable code, e.g. invalid_input, not_found, forbidden'),
      message: z.string().describe('what went wrong, for people'),
      requestId: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .describe('Error');
export type ErrorBody = z.infer<typeof ErrorBody>;

export const Page = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});

export const pageOf = <T extends z.ZodType>(item: T) =>
  z.object({ items: z.array(item), total: z.number().int(), limit: z.number().int(), offset: z.number().int() });
