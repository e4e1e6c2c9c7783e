import { randomBytes } from 'node:crypto';
import type { Database } from '../../apps/broker/src/db/database.ts';
import { apiTokens, groupMembers, groups, users } from '../../apps/broker/src/db/schema/index.ts';
import { hashToken } from '../../apps/broker/src/domain/identity/tokens.ts';

export interface MintedUser {
  id: string;
  username: string;
  token: string;
}

/**
 * Many users at once, each in `groupName` with an API token: load tests and race tests need
 * hundreds of signed-in users, and argon2 logins for each would only measure argon2.
 */
export async function mintUsers(database: Database, n: number, prefix: string, groupName: string): Promise<MintedUser[]> {
  const db = database.db;
  const [group] = await db.insert(groups).values({ name: groupName }).onConflictDoNothing().returning();
  const groupId = group?.id ?? (await db.query.groups.findFirst({ where: (g, { sql }) => sql`lower(${g.name}) = lower(${groupName})` }))!.id;
  const out: MintedUser[] = [];
  for (let i = 0; i < n; i += 500) {
    const batch = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({ username: `${prefix}${String(i + j).padStart(4, '0')}`, token: `sdt_${randomBytes(24).toString('base64url')}` }));
    const rows = await db.insert(users).values(batch.map((b) => ({ username: b.username, role: 'user' }))).returning({ id: users.id, username: users.username });
    await db.insert(groupMembers).values(rows.map((r) => ({ groupId, userId: r.id })));
    await db.insert(apiTokens).values(rows.map((r, j) => ({ userId: r.id, name: 'load', tokenHash: hashToken(batch[j]!.token), prefix: batch[j]!.token.slice(0, 10) })));
    out.push(...rows.map((r, j) => ({ id: r.id, username: r.username, token: batch[j]!.token })));
  }
  return out;
}

export const bearer = (u: MintedUser) => ({ authorization: `Bearer ${u.token}` });
