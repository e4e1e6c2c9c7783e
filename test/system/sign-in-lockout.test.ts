import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../support/database.ts';
import { startBrokerNodes, type BrokerNode as Node } from '../support/broker-nodes.ts';

const ADMIN_PASSWORD = 'lockout-admin-password';

async function loginAt(node: Node, username: string, password: string) {
  const res = await fetch(`${node.base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password }) });
  const body = (await res.json()) as { csrfToken?: string; error?: { code: string; message: string } };
  return { status: res.status, body, cookie: res.headers.getSetCookie()[0]?.split(';')[0] ?? null };
}

/**
 * The lockout lives in PostgreSQL, not in a node's memory: failures counted on two `stagedoor broker`
 * processes add up, the lock holds on both, and an admin unlock on one ends it on the other.
 */
describe('sign-in lockout across two broker nodes', () => {
  const nodes: Node[] = [];

  beforeAll(async () => {
    const url = await createPostgresDatabase();
    nodes.push(...(await startBrokerNodes(['node-a', 'node-b'], { DATABASE_URL: url, STAGEDOOR_ADMIN_PASSWORD: ADMIN_PASSWORD, STAGEDOOR_LOCKOUT_THRESHOLD: '3', STAGEDOOR_LOG_LEVEL: 'warn' })));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.proc.stop('SIGKILL')));
  });

  it('failures on both nodes add up to a lock that holds on both; an admin unlock on one ends it everywhere', async () => {
    const [a, b] = nodes as [Node, Node];
    const admin = await loginAt(a, 'admin', ADMIN_PASSWORD);
    expect(admin.status).toBe(200);
    const made = await fetch(`${a.base}/api/v1/users`, {
      method: 'POST',
      headers: { cookie: admin.cookie!, 'x-csrf-token': admin.body.csrfToken!, 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'artist', password: 'artist-password' }),
    });
    expect(made.status).toBe(201);
    const { id } = (await made.json()) as { id: string };

    expect((await loginAt(a, 'artist', 'wrong-1')).status).toBe(401);
    expect((await loginAt(b, 'artist', 'wrong-2')).status).toBe(401);
    expect((await loginAt(a, 'artist', 'wrong-3')).status).toBe(401);
    for (const node of [a, b]) {
      const res = await loginAt(node, 'artist', 'artist-password');
      expect(res.status, `${node.name} refuses the right password while locked`).toBe(429);
      expect(res.body.error!.code).toBe('login_locked');
      expect(res.cookie).toBeNull();
    }

    const unlock = await fetch(`${b.base}/api/v1/users/${id}/unlock`, { method: 'POST', headers: { cookie: admin.cookie!, 'x-csrf-token': admin.body.csrfToken! } });
    expect(unlock.status).toBe(200);
    expect((await loginAt(a, 'artist', 'artist-password')).status).toBe(200);

    const audit = (await (await fetch(`${b.base}/api/v1/audit?action=auth.lockout`, { headers: { cookie: admin.cookie! } })).json()) as { items: { targetId: string }[] };
    expect(audit.items.map((e) => e.targetId)).toEqual(['account:artist']);
  });
});
