import { eq } from 'drizzle-orm';
import { expect } from 'vitest';
import type { BrokerToGateway } from '@stagedoor/contract';
import type { TestBroker } from '../../../../test/support/broker.ts';
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

/** A control channel without a network: what the hub sends lands in `sent`. */
export function fakeChannel(broker: TestBroker, gateway: Parameters<TestBroker['services']['gateways']['channels']['attach']>[0]) {
  const sent: BrokerToGateway[] = [];
  const closed: { code: number; reason: string }[] = [];
  const handlers = broker.services.gateways.channels.attach(gateway, { send: (d) => void sent.push(JSON.parse(d) as BrokerToGateway), close: (code, reason) => void closed.push({ code, reason }) }, '192.0.2.50');
  let seq = 0;
  let claimId = 0;
  return {
    sent,
    closed,
    async hello(sessions: { grantId: string; bytesUp: number; bytesDown: number; startedAt: string; clientAddress: string }[] = [], identity?: Record<string, unknown>) {
      await handlers.message(JSON.stringify({ type: 'hello', protocol: 1, version: 'test', sessions, ...(identity ? { identity } : {}) }));
      expect(sent.some((m) => m.type === 'welcome')).toBe(true);
    },
    /** A routed claim; resolves with the broker's answer. */
    async claim(grantId: string, clientAddress: string, listener: 'rdp' | 'ssh' | 'tls' | 'tunnel' = 'rdp') {
      const id = ++claimId;
      await handlers.message(JSON.stringify({ type: 'claim', claimId: id, grantId, clientAddress, listener }));
      const answer = sent.find((m) => m.type === 'claimed' && m.claimId === id);
      if (!answer || answer.type !== 'claimed') throw new Error('no claimed answer');
      return { ok: answer.ok, reason: answer.reason };
    },
    async report(body: Record<string, unknown>) {
      const s = ++seq;
      await handlers.message(JSON.stringify({ ...body, seq: s }));
      expect(sent.some((m) => m.type === 'ack' && m.seq === s) || closed.length > 0).toBe(true);
    },
    async heartbeat(sessions: { grantId: string; bytesUp: number; bytesDown: number; session?: number }[]) {
      const before = sent.length;
      await handlers.message(JSON.stringify({ type: 'heartbeat', at: new Date().toISOString(), sessions, grants: 0, bytesInPerSecond: 0, bytesOutPerSecond: 0 }));
      return sent.slice(before);
    },
    close: () => handlers.closed(1000, 'test'),
  };
}

export async function waitUntil(check: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}

