import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_EVENT_TYPES, AgentEvent, AgentReport } from '@stagedoor/contract';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../../../../test/support/broker.ts';
import { REPO_ROOT } from '../../../../test/support/processes.ts';

const SCRIPT = fs.readFileSync(path.join(REPO_ROOT, 'apps/agent/windows/stagedoor-agent.ps1'), 'utf8');
const FIXTURE = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'apps/agent/windows/protocol-fixture.json'), 'utf8')) as { steps: { what: string; body: unknown; sessionState: string }[] };

/** The body of a PowerShell function, from its `function` line to the closing brace at column 0. */
function psFunction(name: string): string {
  const m = new RegExp(`^function ${name}\\b[^\\n]*\\n([\\s\\S]*?)^\\}`, 'm').exec(SCRIPT);
  if (!m) throw new Error(`no function ${name} in the script`);
  return m[1]!;
}
const keysOf = (body: string) => new Set([...body.matchAll(/^\s*(\w+) = /gm), ...body.matchAll(/\$e\.(\w+) = /g)].map((m) => m[1]!));

/**
 * The Windows agent (PowerShell; no Windows here to run it) checked two ways: the JSON its two
 * body-building functions can produce is what the contract accepts, and the bodies of the shared
 * fixture — what it sends over a day — are played over HTTP against a real broker.
 */
describe('the Windows agent protocol', () => {
  let b: TestBroker;
  let base: string;
  let token: string;
  let workstationId: string;

  beforeAll(async () => {
    b = await createTestBroker('pglite');
    base = await b.app.listen({ port: 0, host: '127.0.0.1' });
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const call = async (url: string, payload: unknown) => (await b.app.inject({ method: 'POST', url, headers: as(admin), payload: payload as never })).json();
    const provider = await call('/api/v1/providers', { kind: 'static', name: 'windows-hosts' });
    workstationId = (await call(`/api/v1/providers/${provider.id}/hosts`, { name: 'EDIT-007', address: '10.1.2.7', protocols: [{ protocol: 'rdp' }] })).id;
    token = (await call(`/api/v1/workstations/${workstationId}/agent-token`, null)).token;
  });
  afterAll(async () => {
    await b?.close();
  });

  it('the script builds its bodies from fields the contract knows, and sends only known event types', () => {
    expect([...keysOf(psFunction('New-StagedoorEvent'))].sort()).toEqual(['at', 'idleSeconds', 'session', 'type', 'user']);
    expect([...keysOf(psFunction('New-StagedoorReport'))].sort()).toEqual(['agentVersion', 'events', 'hostname', 'os']);
    for (const k of keysOf(psFunction('New-StagedoorEvent'))) expect(Object.keys(AgentEvent.shape)).toContain(k);
    for (const k of keysOf(psFunction('New-StagedoorReport'))) expect(Object.keys(AgentReport.shape)).toContain(k);
    const sent = new Set([...SCRIPT.matchAll(/New-StagedoorEvent[^\n]*/g)].flatMap((m) => [...m[0].matchAll(/'(\w+)'/g)].map((x) => x[1]!)));
    expect([...sent].sort()).toEqual(['active', 'disconnect', 'heartbeat', 'idle', 'lock', 'login', 'logout', 'reconnect', 'unlock']);
    for (const t of sent) expect(AGENT_EVENT_TYPES).toContain(t);
    // The fixture shows every event type the script can send.
    const inFixture = new Set(FIXTURE.steps.flatMap((s) => (s.body as { events: { type: string }[] }).events.map((e) => e.type)));
    expect([...inFixture].sort()).toEqual([...sent].sort());
    expect(SCRIPT).toContain("'/api/v1/agent/events'");
    expect(SCRIPT).toContain('Authorization = "Bearer $Token"');
  });

  it('a Windows day, played over HTTP: each report moves the session state as the broker records it', async () => {
    for (const step of FIXTURE.steps) {
      expect(AgentReport.safeParse(step.body).success, step.what).toBe(true);
      const res = await fetch(`${base}/api/v1/agent/events`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(step.body) });
      expect(res.status, step.what).toBe(200);
      expect(((await res.json()) as { sessionState: string }).sessionState, step.what).toBe(step.sessionState);
    }
    const ws = await b.services.workstations.get(workstationId);
    expect(ws).toMatchObject({ agentVersion: '0.1.0-windows', agentSessionState: 'none', agentSessionUser: null });
    const actions = (await b.services.audit.list({ targetId: workstationId }, 50, 0)).items.map((i: { action: string }) => i.action);
    for (const a of ['login', 'lock', 'unlock', 'idle', 'active', 'disconnect', 'reconnect', 'logout']) expect(actions).toContain(`workstation.session_${a}`);
  });

  it('reports are rate-limited per agent token (120 a minute), and one noisy agent does not silence another', async () => {
    const post = (t: string) => fetch(`${base}/api/v1/agent/events`, { method: 'POST', headers: { authorization: `Bearer ${t}`, 'content-type': 'application/json' }, body: JSON.stringify({ agentVersion: 't', events: [] }) });
    const statuses: number[] = [];
    for (let i = 0; i < 130 && !statuses.includes(429); i++) statuses.push((await post(token)).status);
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.length).toBeLessThanOrEqual(121);
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const other = (await b.app.inject({ method: 'POST', url: `/api/v1/workstations/${workstationId}/agent-token`, headers: as(admin) })).json().token as string;
    expect((await post(other)).status).toBe(200);
  });
});
