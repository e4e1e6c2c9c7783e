import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, createTestBroker, login, type TestBroker } from '../../../../test/support/broker.ts';
import { startBrokerNodes, type BrokerNode } from '../../../../test/support/broker-nodes.ts';
import { FetchBrowser, startTestOp, type TestOp } from '../../../../test/support/oidc-op.ts';
import { freePort, waitFor } from '../../../../test/support/ports.ts';
import { spawnStagedoor } from '../../../../test/support/processes.ts';
import { create, SECRET_KEY } from './helpers.ts';

/**
 * OIDC across processes: `stagedoor login --sso` end to end (the test plays the browser), and a
 * sign-in started on one broker node finished on another that shares only the database.
 */
describe('OIDC: stagedoor login --sso, and a second broker node', () => {
  let b: TestBroker;
  let op: TestOp;
  let base: string;
  let nodeB: BrokerNode;

  beforeAll(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    op = await startTestOp({
      redirectUris: [`${base}/api/v1/auth/oidc/corp/callback`],
      users: { carol: { password: 'carol-pw', amr: ['pwd', 'mfa'], claims: { preferred_username: 'carol', name: 'Carol', groups: [] } } },
    });
    const env = { STAGEDOOR_SECRET_KEY: SECRET_KEY, STAGEDOOR_PUBLIC_URL: base };
    b = await createTestBroker('postgres', { env });
    await b.app.listen({ port, host: '127.0.0.1' });
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    await create(b.app, admin, '/api/v1/auth-servers', { kind: 'oidc', name: 'corp', config: { issuer: op.issuer, clientId: op.clientId, scopes: ['openid', 'profile', 'groups'], amrValues: ['mfa'] }, clientSecret: op.clientSecret });
    // Node B: another `stagedoor broker` process on the same database, behind the same public URL.
    nodeB = (await startBrokerNodes(['node-b'], { ...env, DATABASE_URL: b.testDb.url!, STAGEDOOR_JOBS: 'off' }))[0]!;
  }, 180_000);
  afterAll(async () => {
    await nodeB?.proc.stop();
    await b?.close();
    await op?.close();
  });

  it('a sign-in started on node A finishes on node B: the state is in PostgreSQL', async () => {
    const browser = new FetchBrowser();
    const callback = await browser.signInAt(`${base}/api/v1/auth/oidc/corp/start`, 'carol', 'carol-pw', (u) => u.origin === base && u.pathname.endsWith('/callback'));
    const onB = await browser.get(`${nodeB.base}${callback.pathname}${callback.search}`);
    expect(onB.status, await onB.clone().text()).toBe(302);
    const cookie = onB.headers.getSetCookie().find((c) => c.startsWith('stagedoor_session='))!.split(';')[0]!;
    const me = await fetch(`${base}/api/v1/me`, { headers: { cookie } });
    expect(((await me.json()) as { user: { username: string } }).user.username).toBe('carol');
    // Spent on B, so A refuses the same callback.
    expect((await new FetchBrowser().get(callback.href)).status).toBe(401);
  });

  it('stagedoor login --sso: the browser lands on the CLI loopback, the CLI trades code + verifier for a session', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sd-sso-cli-'));
    const cli = spawnStagedoor(['login', '--url', base, '--sso', 'corp', '--no-browser'], { XDG_CONFIG_HOME: home });
    let start = '';
    await waitFor('the CLI to print the sign-in URL', () => !!(start = cli.stdout.find((l) => l.includes('/api/v1/auth/oidc/corp/start'))?.trim() ?? ''), 60_000);
    const cliPort = new URL(start).searchParams.get('cliPort');
    const browser = new FetchBrowser();
    const loopback = await browser.signInAt(start, 'carol', 'carol-pw', (u) => u.origin === `http://127.0.0.1:${cliPort}`);
    expect(loopback.pathname).toBe('/callback');
    // Someone who sees the code (a log, a history) cannot spend it without the CLI's verifier.
    const code = loopback.searchParams.get('code')!;
    const stolen = await fetch(`${base}/api/v1/auth/sso/cli-exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: `${code}x`, verifier: 'a'.repeat(43) }) });
    expect(stolen.status).toBe(401);
    const page = await browser.get(loopback.href);
    expect(await page.text()).toContain('Signed in');
    expect(await cli.exited, cli.stderr.join('\n')).toBe(0);
    expect(cli.stdout.join('\n')).toContain(`signed in to ${base} as carol`);
    const saved = JSON.parse(fs.readFileSync(path.join(home, 'stagedoor/session.json'), 'utf8')) as { cookie: string; csrf: string };
    expect(fs.statSync(path.join(home, 'stagedoor/session.json')).mode & 0o777).toBe(0o600);
    // The saved session works, and can mint an API token (API tokens after an SSO sign-in).
    const token = await fetch(`${base}/api/v1/me/tokens`, { method: 'POST', headers: { cookie: saved.cookie, 'x-csrf-token': saved.csrf, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'cli-after-sso' }) });
    expect(token.status, await token.clone().text()).toBe(201);
  });

  it('the CLI hand-off code is useless without the verifier', async () => {
    const browser = new FetchBrowser();
    const challenge = 'x'.repeat(43);
    const loopback = await browser.signInAt(`${base}/api/v1/auth/oidc/corp/start?cliPort=45678&cliChallenge=${challenge}`, 'carol', 'carol-pw', (u) => u.port === '45678');
    const res = await fetch(`${base}/api/v1/auth/sso/cli-exchange`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ code: loopback.searchParams.get('code'), verifier: 'b'.repeat(43) }) });
    expect(res.status).toBe(401);
    const [row] = (await b.services.audit.list({ action: 'auth.login' }, 1, 0)).items;
    expect(row).toMatchObject({ outcome: 'failure', reason: 'the CLI verifier does not match the sign-in it started' });
  });
});
