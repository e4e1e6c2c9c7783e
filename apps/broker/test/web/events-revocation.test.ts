import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { freePort, waitFor } from '../../../../test/support/ports.ts';

/** A bound on waiting for the stream (a few 2-s ticks; the old 30-s check too), not a timing assertion. */
const STREAM_WAIT_MS = 60_000;

/**
 * The event stream carries admin data (pools, gateways, live sessions) to staff. It must follow the
 * account as it is now, not as it was when the stream opened.
 */
describe.each(DRIVERS)('event stream after a change of role or a disabled account [%s]', (driver) => {
  let b: TestBroker;
  let base: string;
  let admin: Session;
  let providerId: string;
  const ok = async (method: 'POST' | 'PATCH', url: string, payload: unknown) => {
    const res = await b.app.inject({ method, url, headers: as(admin), payload: payload as never });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const operator = async (username: string) => {
    const user = await ok('POST', '/api/v1/users', { username, password: `${username}-password`, role: 'operator' });
    return { id: user.id as string, session: await login(b.app, username, `${username}-password`) };
  };

  beforeAll(async () => {
    b = await createTestBroker(driver);
    const port = await freePort();
    await b.app.listen({ port, host: '127.0.0.1' });
    base = `http://127.0.0.1:${port}`;
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    providerId = (await ok('POST', '/api/v1/providers', { kind: 'static', name: 'lab' })).id;
    await ok('POST', '/api/v1/pools', { name: 'before', providerId, membership: { tags: { lab: ['yes'] } } });
  }, 60_000);
  afterAll(async () => b?.close());

  it('a user demoted from staff gets no more dashboard on an open event stream, and nothing read after the demotion', async () => {
    const olga = await operator(`olga-${driver}`);
    const stream = await openStream(base, olga.session);
    await stream.until('the dashboard with the pools', (e) => e.some((x) => x.event === 'dashboard' && poolNames(x.data).includes('before')));
    await ok('PATCH', `/api/v1/users/${olga.id}`, { role: 'user' });
    await ok('POST', '/api/v1/pools', { name: 'after-demotion', providerId, membership: { tags: { lab: ['yes'] } } });
    // The page is told to clear the dashboard: every part of it is null for the role the user has now.
    await stream.until('an empty dashboard', (e) => e.some((x) => x.event === 'dashboard' && JSON.stringify(x.data) === '{"pools":null,"gateways":null,"liveSessions":null}'));
    expect(JSON.stringify(stream.all)).not.toContain('after-demotion');
    stream.close();
  }, 2 * STREAM_WAIT_MS);

  it('a disabled user\'s open event stream ends before it carries anything changed after the account was disabled', async () => {
    const dora = await operator(`dora-${driver}`);
    const stream = await openStream(base, dora.session);
    await stream.until('the dashboard with the pools', (e) => e.some((x) => x.event === 'dashboard' && poolNames(x.data).includes('before')));
    await ok('PATCH', `/api/v1/users/${dora.id}`, { disabled: true });
    await ok('POST', '/api/v1/pools', { name: 'after-disable', providerId, membership: { tags: { lab: ['yes'] } } });
    await waitFor('the stream to end', () => stream.done(), STREAM_WAIT_MS);
    expect(stream.all.at(-1)).toEqual({ event: 'end', data: { reason: 'the session ended' } });
    expect(JSON.stringify(stream.all)).not.toContain('after-disable');
  }, 2 * STREAM_WAIT_MS);
});

function poolNames(data: unknown): string[] {
  return ((data as { pools: { name: string }[] | null }).pools ?? []).map((p) => p.name);
}

/** A text/event-stream read over real HTTP: every event so far, whether it ended, and a wait for a condition. */
async function openStream(base: string, who: Session) {
  const ctl = new AbortController();
  const res = await fetch(`${base}/api/v1/events`, { headers: { cookie: who.cookie, accept: 'text/event-stream' }, signal: ctl.signal });
  expect(res.status).toBe(200);
  const all: { event: string; data: unknown }[] = [];
  let ended = false;
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.+)$/m.exec(block)?.[1];
          const data = /^data: (.+)$/m.exec(block)?.[1];
          if (event && data) all.push({ event, data: JSON.parse(data) });
        }
      }
    } catch {
      // aborted by close()
    }
    ended = true;
  })();
  return {
    all,
    done: () => ended,
    close: () => ctl.abort(),
    until: (what: string, check: (events: typeof all) => boolean) => waitFor(what, () => check(all), STREAM_WAIT_MS),
  };
}
