import { describe, expect, it } from 'vitest';
import { Agent, AgentConfigError, diff, loadAgentConfig, NOBODY, parseUtmp, type Observation } from '../src/index.ts';

const NOW = new Date('2026-03-02T09:00:00Z');
const session = (over: Partial<Observation['sessions'][number]> = {}) => ({ id: 'pts/0', user: 'ana', idleSeconds: 5, locked: false, ...over });

describe('agent: what changed → events', () => {
  it.each([
    ['nobody, nobody: nothing', NOBODY, { sessions: [] }, []],
    ['a login', NOBODY, { sessions: [session()] }, ['login']],
    ['a login into an idle, locked session', NOBODY, { sessions: [session({ idleSeconds: 900, locked: true })] }, ['login', 'lock', 'idle']],
    ['idle after the threshold', { ...NOBODY, user: 'ana', session: 'pts/0' }, { sessions: [session({ idleSeconds: 300 })] }, ['idle']],
    ['active again', { ...NOBODY, user: 'ana', session: 'pts/0', idle: true }, { sessions: [session({ idleSeconds: 2 })] }, ['active']],
    ['unknown idle time is not idle', { ...NOBODY, user: 'ana', session: ':0' }, { sessions: [session({ id: ':0', idleSeconds: null })] }, []],
    ['lock and unlock', { ...NOBODY, user: 'ana', session: 'pts/0', locked: true }, { sessions: [session()] }, ['unlock']],
    ['logout', { ...NOBODY, user: 'ana', session: 'pts/0' }, { sessions: [] }, ['logout']],
    ['another user: logout then login', { ...NOBODY, user: 'ana', session: 'pts/0' }, { sessions: [session({ user: 'ben', id: 'pts/1' })] }, ['logout', 'login']],
    ['a Windows session disconnects, then reconnects', { ...NOBODY, user: 'ana', session: '2' }, { sessions: [session({ id: '2', disconnected: true })] }, ['disconnect']],
    ['several sessions: the most recently used speaks', { ...NOBODY, user: 'ana', session: 'pts/0' }, { sessions: [session({ idleSeconds: 4000 }), session({ id: 'pts/3', idleSeconds: 1 })] }, []],
  ] as const)('%s', (_n, prev, obs, want) => {
    expect(diff(prev, obs as unknown as Observation, 300, NOW).events.map((e) => e.type)).toEqual(want);
  });

  it('parses utmp records (glibc layout), keeping only what it needs', () => {
    const rec = Buffer.alloc(384);
    rec.writeInt16LE(7, 0);
    rec.writeInt32LE(4242, 4);
    rec.write('pts/3', 8);
    rec.write('ana', 44);
    rec.write('198.51.100.7', 76);
    expect(parseUtmp(Buffer.concat([rec, Buffer.alloc(384)]))).toEqual([
      { type: 7, pid: 4242, line: 'pts/3', user: 'ana', host: '198.51.100.7' },
      { type: 0, pid: 0, line: '', user: '', host: '' },
    ]);
  });

  it('a broker outage never throws: events queue, retries back off, then everything is sent in order', async () => {
    let up = false;
    const bodies: { events: { type: string }[] }[] = [];
    let now = NOW.getTime();
    let obs: Observation = { sessions: [] };
    const agent = new Agent({
      brokerUrl: 'http://broker.invalid',
      token: 'sda_test',
      pollSeconds: 1,
      idleThresholdSeconds: 300,
      observe: async () => obs,
      warn: async () => undefined,
      logout: async () => undefined,
      log: () => undefined,
      now: () => new Date(now),
      fetch: (async (_url: unknown, init: { body: string }) => {
        if (!up) throw new Error('ECONNREFUSED');
        bodies.push(JSON.parse(init.body));
        return new Response(JSON.stringify({ heartbeatSeconds: 60, notice: null }), { status: 200 });
      }) as unknown as typeof fetch,
    });
    obs = { sessions: [session()] };
    await agent.tick(); // login queued; the send fails
    obs = { sessions: [] };
    now += 500;
    await agent.tick(); // logout queued; backing off: no send yet
    up = true;
    now += 60_000;
    await agent.tick();
    expect(bodies.map((b) => b.events.map((e) => e.type))).toEqual([['login', 'logout']]);
  });
});

describe('agent configuration', () => {
  const token = `sda_${'k'.repeat(24)}`;
  it('a plain-http broker URL beyond loopback is refused (the agent token would cross the network in clear text)', () => {
    expect(() => loadAgentConfig({ broker: 'http://broker.studio.example', token }, {})).toThrow(/plain http:\/\/ to another host/);
    expect(() => loadAgentConfig({ broker: 'http://10.0.0.5:8080', token }, {})).toThrow(AgentConfigError);
    for (const ok of ['https://broker.studio.example', 'http://127.0.0.1:8080', 'http://localhost:8080', 'http://[::1]:8080', 'http://[::ffff:127.0.0.1]:8080']) {
      expect(loadAgentConfig({ broker: ok, token }, {}).brokerUrl).toBe(ok);
    }
    expect(loadAgentConfig({ broker: 'http://10.0.0.5:8080', token, allowInsecureBroker: true }, {}).brokerUrl).toBe('http://10.0.0.5:8080');
    expect(loadAgentConfig({ token }, { STAGEDOOR_BROKER_URL: 'http://10.0.0.5:8080', STAGEDOOR_AGENT_ALLOW_INSECURE_BROKER: 'true' }).brokerUrl).toBe('http://10.0.0.5:8080');
  });
});
