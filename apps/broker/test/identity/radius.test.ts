import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/migrate.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { freeUdpPort, silentUdpServer, startFreeRadius, type FreeRadius } from '../../../../test/support/directory/freeradius.ts';
import { create, hasSessionCookie, loginRaw, mfaRaw, SECRET_KEY } from './helpers.ts';

const SECRET = 'radius-Shared-secret-41d9';
const WRONG_SECRET = 'not-the-Shared-secret-0b2';
const PROMPT = 'Approve the push, or enter the code from your phone';

/** FreeRADIUS as the primary check and as the second factor: Accept, Reject, Challenge → answer → Accept. */
describe('RADIUS against FreeRADIUS', () => {
  let radius: FreeRadius;
  let silent: Awaited<ReturnType<typeof silentUdpServer>>;
  let b: TestBroker;
  let admin: Session;
  const ids: Record<string, string> = {};

  /** A local user who must pass the second factor `server` (through a group that requires it). */
  async function userBehind(server: string, username: string, password: string) {
    const group = await create(b.app, admin, '/api/v1/groups', { name: `behind-${server}` });
    await create(b.app, admin, '/api/v1/users', { username, password, groupIds: [group.id] });
    const res = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${ids[server]}`, headers: as(admin), payload: { requiredForGroupIds: [group.id] } });
    expect(res.statusCode, res.body).toBe(200);
  }

  const radiusServer = async (name: string, over: Record<string, unknown>, config: Record<string, unknown> = {}) => {
    ids[name] = (
      await create(b.app, admin, '/api/v1/auth-servers', {
        kind: 'radius',
        name,
        sharedSecret: SECRET,
        ...over,
        config: { servers: [{ host: radius.host, port: radius.port }], timeoutMs: 1000, retries: 1, ...config },
      })
    ).id;
  };

  beforeAll(async () => {
    radius = await startFreeRadius({
      secret: SECRET,
      users: ['ralph\tCleartext-Password := "ralph-radius-pass"', '\tReply-Message := "Hello Ralph"', 'mia\tCleartext-Password := "246810"', ''].join('\n'),
      // pushy: the password opens a challenge (State 0x7374616765); the code 424242 with that State is accepted.
      authorize: `
		if (&User-Name == "pushy") {
			if (!&State) {
				if (&User-Password == "pushy-local-pass") {
					update reply {
						&Reply-Message := "${PROMPT}"
						&State := 0x7374616765
					}
					update control {
						&Response-Packet-Type := Access-Challenge
					}
					handled
				}
				else {
					reject
				}
			}
			elsif (&State == 0x7374616765 && &User-Password == "424242") {
				update control {
					&Auth-Type := Accept
				}
				ok
			}
			else {
				reject
			}
		}`,
    });
    silent = await silentUdpServer();
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const closed = await freeUdpPort();
    await radiusServer('radius-primary', { purpose: 'primary' });
    // The first server has nothing listening: the code step also proves the failover.
    await radiusServer('otp-codes', { purpose: 'second-factor' }, { servers: [{ host: '127.0.0.1', port: closed }, { host: radius.host, port: radius.port }], secondFactorRequest: 'code' });
    await radiusServer('okta-agent', { purpose: 'second-factor' }, { secondFactorRequest: 'password' });
    await radiusServer('wrong-secret', { purpose: 'second-factor', sharedSecret: WRONG_SECRET }, { timeoutMs: 400 });
    await radiusServer('gone', { purpose: 'second-factor' }, { servers: [{ host: '127.0.0.1', port: closed }, { host: '127.0.0.1', port: silent.port }], timeoutMs: 300 });
    await userBehind('otp-codes', 'mia', 'mia-local-pass');
    await userBehind('okta-agent', 'pushy', 'pushy-local-pass');
    await userBehind('wrong-secret', 'wendy', 'wendy-local-pass');
    await userBehind('gone', 'ulrich', 'ulrich-local-pass');
  });
  // The servers first: they must go even if closing the broker hangs.
  afterAll(async () => {
    await radius?.stop();
    await silent?.close();
    await b?.close();
  });

  describe('as the primary check', () => {
    it('Access-Accept signs the user in (created on first login, linked to the server)', async () => {
      const res = await loginRaw(b.app, 'ralph', 'ralph-radius-pass');
      expect(res.statusCode, res.body).toBe(200);
      expect(hasSessionCookie(res)).toBe(true);
      expect(res.json().user).toMatchObject({ username: 'ralph', authServerId: ids['radius-primary'] });
    });

    it('Access-Reject is a wrong password', async () => {
      const res = await loginRaw(b.app, 'ralph', 'not-ralphs-pass');
      expect(res.statusCode).toBe(401);
      const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'ralph' }, 1, 0)).items;
      expect(audit).toMatchObject({ reason: 'rejected by "radius-primary"', details: { authServer: 'radius-primary' } });
    });
  });

  describe('as the second factor', () => {
    it('the first answer names the factor and carries no session; a code accepted by RADIUS completes the login', async () => {
      const first = await loginRaw(b.app, 'mia', 'mia-local-pass');
      expect(first.statusCode, first.body).toBe(200);
      expect(hasSessionCookie(first)).toBe(false);
      const { mfaRequired } = first.json();
      expect(mfaRequired).toMatchObject({ factor: 'radius', prompt: 'Enter your one-time code', loginToken: expect.any(String) });
      const done = await mfaRaw(b.app, mfaRequired.loginToken, '246810');
      expect(done.statusCode, done.body).toBe(200);
      expect(hasSessionCookie(done)).toBe(true);
      expect(done.json().user.username).toBe('mia');
      const trail = (await b.services.audit.list({ action: 'auth.*', actor: 'mia' }, 10, 0)).items.map((a) => `${a.action}:${a.outcome}:${(a.details as { stage?: string }).stage ?? ''}`);
      expect(trail.slice(0, 2)).toEqual(['auth.login:success:', 'auth.mfa:success:required']);
    });

    it('Access-Reject of the code: no login, and the login token is spent', async () => {
      const { mfaRequired } = (await loginRaw(b.app, 'mia', 'mia-local-pass')).json();
      const wrong = await mfaRaw(b.app, mfaRequired.loginToken, '111111');
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().error.code).toBe('mfa_failed');
      expect(hasSessionCookie(wrong)).toBe(false);
      expect((await mfaRaw(b.app, mfaRequired.loginToken, '246810')).statusCode).toBe(401);
    });

    it('Challenge → answer → Accept: the password goes to RADIUS, its prompt is shown, the answer completes the login', async () => {
      const first = await loginRaw(b.app, 'pushy', 'pushy-local-pass');
      expect(first.statusCode, first.body).toBe(200);
      expect(hasSessionCookie(first)).toBe(false);
      const { mfaRequired } = first.json();
      expect(mfaRequired).toMatchObject({ factor: 'radius', prompt: PROMPT });
      const done = await mfaRaw(b.app, mfaRequired.loginToken, '424242');
      expect(done.statusCode, done.body).toBe(200);
      expect(hasSessionCookie(done)).toBe(true);
      expect((await b.app.inject({ url: '/api/v1/me', headers: { cookie: `stagedoor_session=${done.cookies[0]!.value}` } })).json().user.username).toBe('pushy');
    });

    it('a wrong answer to the challenge is refused', async () => {
      const { mfaRequired } = (await loginRaw(b.app, 'pushy', 'pushy-local-pass')).json();
      const res = await mfaRaw(b.app, mfaRequired.loginToken, '000000');
      expect(res.statusCode).toBe(401);
      expect(hasSessionCookie(res)).toBe(false);
      const [audit] = (await b.services.audit.list({ action: 'auth.mfa', outcome: 'failure', actor: 'pushy' }, 1, 0)).items;
      expect(audit).toMatchObject({ reason: 'rejected by "okta-agent"', details: { factor: 'radius', mfaServer: 'okta-agent' } });
    });

    it('a wrong shared secret is a clear error naming it (in the audit row and the admin test, not to the user), and no login', async () => {
      const res = await loginRaw(b.app, 'wendy', 'wendy-local-pass');
      expect(res.statusCode).toBe(503);
      expect(res.json().error.message).toMatch(/sign-in is unavailable/);
      expect(res.body).not.toContain(`${radius.host}:${radius.port}`);
      expect(hasSessionCookie(res)).toBe(false);
      const [audit] = (await b.services.audit.list({ action: 'auth.mfa', outcome: 'failure', actor: 'wendy' }, 1, 0)).items;
      expect(audit!.details.error).toMatch(/RADIUS server "wrong-secret".*shared secret configured in Stagedoor differs/);
      const test = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${ids['wrong-secret']}/test`, headers: as(admin), payload: {} });
      expect(test.json()).toMatchObject({ ok: false, message: expect.stringContaining('shared secret') });
    });

    it('an unreachable server is a clear error naming each address (in the audit row, never to an anonymous caller), and no login', async () => {
      const before = silent.received();
      const res = await loginRaw(b.app, 'ulrich', 'ulrich-local-pass');
      expect(res.statusCode).toBe(503);
      expect(res.body).not.toContain('127.0.0.1');
      const [failure] = (await b.services.audit.list({ action: 'auth.mfa', outcome: 'failure', actor: 'ulrich' }, 1, 0)).items;
      const message = String(failure!.details.error);
      expect(message).toContain('RADIUS server "gone" cannot be used');
      expect(message).toMatch(/127\.0\.0\.1:\d+: nothing listens there/);
      expect(message).toContain(`127.0.0.1:${silent.port}: no answer after 2 tries`);
      expect(silent.received() - before).toBeGreaterThanOrEqual(2);
      expect(hasSessionCookie(res)).toBe(false);
      const [audit] = (await b.services.audit.list({ action: 'auth.mfa', outcome: 'failure', actor: 'ulrich' }, 1, 0)).items;
      expect(audit!.reason).toBe('second factor unavailable');
    });

    it('the test endpoint proves reachability and the secret', async () => {
      const res = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${ids['okta-agent']}/test`, headers: as(admin), payload: { username: 'nobody' } });
      expect(res.json()).toMatchObject({ ok: true, details: { answer: 'reject', server: `${radius.host}:${radius.port}` } });
    });
  });

  it('the shared secret is encrypted in the raw row and never in an answer or a log line', async () => {
    const raw = rowsOf<{ name: string; row: string; secret: string }>(await b.database.db.execute(sql`select name, row_to_json(a)::text as row, secret_ciphertext as secret from auth_servers a where kind = 'radius'`));
    expect(raw).toHaveLength(5);
    for (const r of raw) {
      expect(r.secret).toMatch(/^v2:[0-9a-f]{16}:/);
      expect(r.row).not.toContain(SECRET);
      expect(r.row).not.toContain(WRONG_SECRET);
    }
    const list = await b.app.inject({ url: '/api/v1/auth-servers', headers: as(admin) });
    expect(list.body).not.toContain(SECRET);
    expect(list.body).not.toContain(WRONG_SECRET);
    const logs = b.logLines.join('\n');
    expect(logs).not.toContain(SECRET);
    expect(logs).not.toContain(WRONG_SECRET);
  });
});
