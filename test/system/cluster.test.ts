import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../support/database.ts';
import { startBrokerNodes, type BrokerNode as Node } from '../support/broker-nodes.ts';
import { waitFor } from '../support/ports.ts';
import { jsonLines } from '../support/processes.ts';

const METRICS_TOKEN = 'cluster-metrics-token-0f3e';

const PASSWORD = 'cluster-admin-password';

/**
 * Two `stagedoor broker` processes on one real PostgreSQL: they share sessions, either keeps
 * serving when the other dies, and an advisory-locked job never runs on both at once.
 */
describe('two broker nodes on one PostgreSQL', () => {
  let url: string;
  const nodes: Node[] = [];
  let client: pg.Client;
  /** A second connection: `client` holds the lock inside a transaction, whose pg_stat_activity would be one snapshot. */
  let probe: pg.Client;

  beforeAll(async () => {
    url = await createPostgresDatabase();
    client = new pg.Client({ connectionString: url });
    await client.connect();
    probe = new pg.Client({ connectionString: url });
    await probe.connect();
    // Both start at once: migrations and the admin bootstrap must cope with the race.
    nodes.push(...(await startBrokerNodes(['node-a', 'node-b'], { DATABASE_URL: url, STAGEDOOR_ADMIN_PASSWORD: PASSWORD, STAGEDOOR_HOUSEKEEPING_INTERVAL_SECONDS: '0.2', STAGEDOOR_LOG_LEVEL: 'info', STAGEDOOR_METRICS_TOKEN: METRICS_TOKEN })));
  });

  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.proc.stop('SIGKILL')));
    await client?.end();
    await probe?.end();
  });

  it('both nodes are ready on PostgreSQL, and exactly one admin was created', async () => {
    for (const n of nodes) {
      const ready = await (await fetch(`${n.base}/readyz`)).json();
      expect(ready).toMatchObject({ status: 'ready', database: { driver: 'postgres', migrations: { upToDate: true } }, node: n.name });
    }
    const { rows } = await client.query(`select count(*)::int as n from users where username = 'admin'`);
    expect(rows[0].n).toBe(1);
  });

  it('a session made on one node works on the other, CSRF included', async () => {
    const [a, b] = nodes as [Node, Node];
    const res = await fetch(`${a.base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
    expect(res.status).toBe(200);
    const cookie = res.headers.getSetCookie()[0]!.split(';')[0]!;
    const { csrfToken } = (await res.json()) as { csrfToken: string };
    const me = await fetch(`${b.base}/api/v1/me`, { headers: { cookie } });
    expect(me.status).toBe(200);
    const made = await fetch(`${b.base}/api/v1/groups`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrfToken, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Colorists' }) });
    expect(made.status).toBe(201);
    const seen = (await (await fetch(`${a.base}/api/v1/groups`, { headers: { cookie } })).json()) as { items: { name: string }[] };
    expect(seen.items.map((g: { name: string }) => g.name)).toContain('Colorists');
  });

  it('the advisory-locked housekeeping job never runs on both nodes at once', async () => {
    // Make each housekeeping pass slow: a dead session row that the job must delete is held by a
    // lock from this test until a pass is seen waiting on it, and a second longer. Without the job's
    // advisory lock, both nodes would sit in that DELETE together; with it, one waits inside and the
    // other skips its tick. (Waiting for the blocked DELETE, not for a fixed time, keeps each round
    // slow on a loaded machine, where a pass may start late.)
    const { rows } = await client.query(`select id from users where username = 'admin'`);
    for (let round = 0; round < 3; round++) {
      // A pass every 0.2 s may delete the dead row between its insert and the lock (a loaded machine
      // widens that gap): then nothing is locked and no pass would ever wait. Insert again until the
      // lock holds a row.
      for (;;) {
        await client.query(
          `insert into sessions (token_hash, csrf_token, user_id, idle_expires_at, expires_at) values ($1, 'x', $2, now() - interval '3 days', now() - interval '3 days')`,
          [`dead-${round}-${Date.now()}`, rows[0].id],
        );
        await client.query('begin');
        const locked = await client.query(`select id from sessions where expires_at < now() - interval '2 days' for update`);
        if (locked.rowCount! > 0) break;
        await client.query('rollback');
      }
      await waitFor('a housekeeping pass to wait on the locked session', async () => (await probe.query(`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%delete from "sessions"%'`)).rows[0].n > 0, 60_000);
      await new Promise((r) => setTimeout(r, 1000)); // the blocked pass now lasts over a second: "slow" below
      await client.query('commit');
      await new Promise((r) => setTimeout(r, 400));
    }
    await waitFor('the dead sessions to be deleted', async () => (await client.query(`select count(*)::int as n from sessions where expires_at < now() - interval '2 days'`)).rows[0].n === 0, 10_000);

    const passes = nodes.flatMap((n) =>
      jsonLines(n.proc.stdout)
        .filter((l) => l.msg === 'job pass' && l.job === 'housekeeping')
        .map((l) => ({ node: n.name, start: Date.parse(l.startedAt as string), end: Date.parse(l.finishedAt as string) })),
    );
    passes.sort((x, y) => x.start - y.start);
    const slow = passes.filter((p) => p.end - p.start >= 1000);
    expect(slow.length, 'some passes were held up by the row lock, so overlap was possible').toBeGreaterThanOrEqual(2);
    for (let i = 1; i < passes.length; i++) {
      expect(passes[i]!.start, `pass on ${passes[i]!.node} started while the pass on ${passes[i - 1]!.node} was still running`).toBeGreaterThanOrEqual(passes[i - 1]!.end);
    }
    const skipped = await Promise.all(nodes.map(async (n) => skippedRuns(await (await fetch(`${n.base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text())));
    expect(skipped.reduce((a, b) => a + b, 0), 'the waiting node skipped its ticks').toBeGreaterThan(0);
    console.log(`[cluster] housekeeping passes: ${passes.length} (${slow.length} slow), by node: ${nodes.map((n) => `${n.name}=${passes.filter((p) => p.node === n.name).length}`).join(' ')}; skipped ticks: ${skipped.join(' + ')}`);
  });

  it('keeps serving when one node dies: the other accepts the same session and new logins', async () => {
    const [a, b] = nodes as [Node, Node];
    const res = await fetch(`${b.base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
    const cookie = res.headers.getSetCookie()[0]!.split(';')[0]!;
    await a.proc.stop('SIGKILL');
    await expect(fetch(`${a.base}/healthz`)).rejects.toThrow();
    expect((await fetch(`${b.base}/readyz`)).status).toBe(200);
    expect((await fetch(`${b.base}/api/v1/me`, { headers: { cookie } })).status).toBe(200);
    const again = await fetch(`${b.base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: PASSWORD }) });
    expect(again.status).toBe(200);
  });
});

function skippedRuns(metricsText: string): number {
  const m = /stagedoor_job_runs_total\{job="housekeeping",outcome="skipped"\} (\d+)/.exec(metricsText);
  return m ? Number(m[1]) : 0;
}
