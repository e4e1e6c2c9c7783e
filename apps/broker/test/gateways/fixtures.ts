import { eq } from 'drizzle-orm';
import type { Database } from '../../src/db/database.ts';
import { connections, providers, users, workstations } from '../../src/db/schema/index.ts';

/**
 * Rows the connect flow would have written before it asks for a grant: a static provider, a
 * workstation at `workstationAddress`, and a `ready` connection of the admin to it.
 */
export async function insertConnection(database: Database, opts: { workstationAddress: string; clientAddress: string; protocol?: 'ssh' | 'vnc' | 'rdp' }): Promise<{ connectionId: string; workstationId: string; userId: string }> {
  const db = database.db;
  const [admin] = await db.select().from(users).where(eq(users.username, 'admin'));
  const suffix = Math.random().toString(36).slice(2, 10);
  const [provider] = await db.insert(providers).values({ name: `static-${suffix}`, kind: 'static', credentialsMode: 'none' }).returning();
  const [ws] = await db.insert(workstations).values({ providerId: provider!.id, externalId: `host-${suffix}`, name: `ws-${suffix}`, privateAddress: opts.workstationAddress, powerState: 'running' }).returning();
  const [conn] = await db
    .insert(connections)
    .values({ userId: admin!.id, workstationId: ws!.id, protocol: opts.protocol ?? 'ssh', clientAddress: opts.clientAddress, state: 'ready', readyAt: new Date() })
    .returning();
  return { connectionId: conn!.id, workstationId: ws!.id, userId: admin!.id };
}

export async function connectionRow(database: Database, id: string) {
  const [row] = await database.db.select().from(connections).where(eq(connections.id, id));
  return row!;
}
