import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { hashToken, newToken } from '../../src/domain/identity/tokens.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { create, SECRET_KEY } from './helpers.ts';

const DAY = 86_400_000;

/**
 * API tokens are standing credentials: they end with the password and with "log out everywhere",
 * they expire, an admin can see and revoke them, and a token cannot make itself permanent (mint
 * another token, change MFA).
 */
describe.each(DRIVERS)('API token lifetime and revocation [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T10:00:00Z');
  let b: TestBroker;
  let n = 0;

  beforeAll(async () => {
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    const admin = await adminSession();
    await create(b.app, admin, '/api/v1/auth-servers', { kind: 'totp', name: 'authenticator' });
  });
  afterAll(async () => b?.close());

  // Sessions last a day at most: tests that move the clock by months sign in again.
  const adminSession = () => login(b.app, 'admin', ADMIN_PASSWORD);
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const works = async (token: string) => (await b.app.inject({ url: '/api/v1/me', headers: bearer(token) })).statusCode === 200;

  /** A fresh user, signed in, with one API token. */
  async function userWithToken(body: Record<string, unknown> = {}): Promise<{ session: Session; token: string; tokenId: string; expiresAt: string; username: string }> {
    const username = `tok-${driver}-${++n}`;
    await create(b.app, await adminSession(), '/api/v1/users', { username, password: `${username}-password` });
    const session = await login(b.app, username, `${username}-password`);
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: as(session), payload: { name: 'ci', ...body } });
    expect(res.statusCode, res.body).toBe(201);
    expect(await works(res.json().token)).toBe(true);
    return { session, token: res.json().token, tokenId: res.json().id, expiresAt: res.json().expiresAt, username };
  }

  it('an API token minted before a password reset stops working with the old password', async () => {
    const { session, token } = await userWithToken();
    const res = await b.app.inject({ method: 'POST', url: `/api/v1/users/${session.userId}/password`, headers: as(await adminSession()), payload: { password: 'a-brand-new-password' } });
    expect(res.statusCode, res.body).toBe(204);
    expect(await works(token)).toBe(false);
    const [audit] = (await b.services.audit.list({ action: 'user.password_reset', targetId: session.userId }, 1, 0)).items;
    expect(audit!.details).toMatchObject({ sessionsEnded: 1, apiTokensRevoked: 1 });
  });

  it('an API token minted before "log out everywhere" stops working after it, the user\'s own and an admin\'s', async () => {
    const own = await userWithToken();
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/auth/logout-all', headers: as(own.session) });
    expect(res.json()).toEqual({ sessionsEnded: 1, apiTokensRevoked: 1 });
    expect(await works(own.token)).toBe(false);

    const other = await userWithToken();
    const byAdmin = await b.app.inject({ method: 'POST', url: `/api/v1/users/${other.session.userId}/logout-all`, headers: as(await adminSession()) });
    expect(byAdmin.json()).toEqual({ sessionsEnded: 1, apiTokensRevoked: 1 });
    expect(await works(other.token)).toBe(false);
    expect((await b.services.audit.list({ action: 'auth.logout_all', targetId: other.session.userId }, 1, 0)).items[0]!.details).toEqual({ sessions: 1, apiTokens: 1 });
  });

  it('a disabled user\'s API token stays dead when the account is enabled again', async () => {
    const { session, token } = await userWithToken();
    const admin = await adminSession();
    expect((await b.app.inject({ method: 'PATCH', url: `/api/v1/users/${session.userId}`, headers: as(admin), payload: { disabled: true } })).statusCode).toBe(200);
    expect(await works(token)).toBe(false);
    expect((await b.app.inject({ method: 'PATCH', url: `/api/v1/users/${session.userId}`, headers: as(admin), payload: { disabled: false } })).statusCode).toBe(200);
    expect(await works(token)).toBe(false);
  });

  it('a token created without a lifetime expires after the default of 90 days, not never', async () => {
    const { token, expiresAt } = await userWithToken();
    expect(Date.parse(expiresAt)).toBe(clock.now().getTime() + 90 * DAY);
    clock.advance(90 * DAY - 1000);
    expect(await works(token)).toBe(true);
    clock.advance(2000);
    expect(await works(token)).toBe(false);
  });

  it('a token lifetime beyond the maximum of 365 days is refused, and no token is made', async () => {
    const { session } = await userWithToken();
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: as(session), payload: { name: 'forever', expiresInDays: 3650 } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ code: 'invalid_input', details: { fields: [{ path: 'body.expiresInDays', message: 'must be at most 365' }] } });
    const [row] = rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from api_tokens where user_id = ${session.userId} and name = 'forever'`));
    expect(row!.n).toBe(0);
    const longest = await b.app.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: as(session), payload: { name: 'a-year', expiresInDays: 365 } });
    expect(longest.statusCode, longest.body).toBe(201);
  });

  it('a token stored without an expiry, made before lifetimes existed, ends at the maximum lifetime', async () => {
    const { session } = await userWithToken();
    const token = newToken('sdt_');
    await b.services.sessionsRepo.insertToken({ userId: session.userId, name: 'legacy', tokenHash: hashToken(token), prefix: token.slice(0, 10), createdAt: clock.now(), expiresAt: null });
    const listed = await b.app.inject({ url: '/api/v1/me/tokens', headers: bearer(token) });
    expect(listed.json().items.find((t: { name: string }) => t.name === 'legacy').expiresAt).toBe(new Date(clock.now().getTime() + 365 * DAY).toISOString());
    clock.advance(365 * DAY - 1000);
    expect(await works(token)).toBe(true);
    clock.advance(2000);
    expect(await works(token)).toBe(false);
  });

  it('a stolen API token cannot mint another token or change MFA, so it cannot make itself permanent', async () => {
    const { token, username } = await userWithToken();
    const attempts = [
      { method: 'POST', url: '/api/v1/me/tokens', payload: { name: 'persistence' } },
      { method: 'POST', url: '/api/v1/me/mfa/totp', payload: {} },
      { method: 'POST', url: '/api/v1/me/mfa/totp/confirm', payload: { code: '123456' } },
      { method: 'POST', url: '/api/v1/me/mfa/recovery-codes', payload: { code: '123456' } },
      { method: 'DELETE', url: '/api/v1/me/mfa/totp', payload: { code: '123456' } },
    ] as const;
    for (const a of attempts) {
      const res = await b.app.inject({ method: a.method, url: a.url, headers: bearer(token), payload: a.payload });
      expect(res.statusCode, `${a.method} ${a.url}: ${res.body}`).toBe(403);
      expect(res.json().error.message).toContain('an API token cannot do this');
    }
    const [row] = rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from api_tokens t join users u on u.id = t.user_id where u.username = ${username}`));
    expect(row!.n).toBe(1);
    const denied = await b.services.audit.list({ action: 'authz.denied', actor: username }, 10, 0);
    expect(denied.items).toHaveLength(attempts.length);
    expect(denied.items.every((d) => d.reason === 'API token on a session-only route')).toBe(true);
    // What a token is for still works.
    expect(await works(token)).toBe(true);
  });

  it('an admin lists a user\'s tokens, never their secrets, and revokes one; an operator may list, not revoke', async () => {
    const { session, token, tokenId } = await userWithToken();
    const admin = await adminSession();
    const list = await b.app.inject({ url: `/api/v1/users/${session.userId}/tokens`, headers: as(admin) });
    expect(list.statusCode, list.body).toBe(200);
    expect(list.json().items).toMatchObject([{ id: tokenId, name: 'ci', prefix: token.slice(0, 10), expiresAt: expect.any(String) }]);
    expect(list.body).not.toContain(token);

    await create(b.app, admin, '/api/v1/users', { username: `op-${driver}`, password: 'operator-password', role: 'operator' });
    const op = await login(b.app, `op-${driver}`, 'operator-password');
    expect((await b.app.inject({ url: `/api/v1/users/${session.userId}/tokens`, headers: as(op) })).statusCode).toBe(200);
    expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/users/${session.userId}/tokens/${tokenId}`, headers: as(op) })).statusCode).toBe(403);
    expect(await works(token)).toBe(true);

    // Another user's id with this token's id: not theirs, nothing revoked.
    expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/users/${op.userId}/tokens/${tokenId}`, headers: as(admin) })).statusCode).toBe(404);
    expect(await works(token)).toBe(true);
    const revoked = await b.app.inject({ method: 'DELETE', url: `/api/v1/users/${session.userId}/tokens/${tokenId}`, headers: as(admin) });
    expect(revoked.statusCode, revoked.body).toBe(204);
    expect(await works(token)).toBe(false);
    expect((await b.app.inject({ url: `/api/v1/users/${session.userId}/tokens`, headers: as(admin) })).json().items).toEqual([]);
    const [audit] = (await b.services.audit.list({ action: 'api_token.revoke', targetId: tokenId }, 1, 0)).items;
    expect(audit).toMatchObject({ actorName: 'admin', details: { userId: session.userId } });
  });
});

describe('API token lifetime settings', () => {
  it('default 90 days, maximum 365; a default above the maximum is refused at start, naming the variable', () => {
    expect(loadConfig({}).apiTokens).toEqual({ defaultDays: 90, maxDays: 365 });
    expect(loadConfig({ STAGEDOOR_API_TOKEN_DEFAULT_DAYS: '7', STAGEDOOR_API_TOKEN_MAX_DAYS: '30' }).apiTokens).toEqual({ defaultDays: 7, maxDays: 30 });
    expect(() => loadConfig({ STAGEDOOR_API_TOKEN_DEFAULT_DAYS: '400' })).toThrow(ConfigError);
    expect(() => loadConfig({ STAGEDOOR_API_TOKEN_DEFAULT_DAYS: '400' })).toThrow(/STAGEDOOR_API_TOKEN_DEFAULT_DAYS: must not exceed STAGEDOOR_API_TOKEN_MAX_DAYS \(365\)/);
  });
});
