import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { openPostgres } from '../../src/db/postgres.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { assembleBroker, type Broker } from '../../src/main.ts';
import { totpCode } from '../../src/providers/directory/totp.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, sessionCookie, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS, silentLog } from '../../../../test/support/database.ts';
import { create, hasSessionCookie, loginRaw, mfaRaw, SECRET_KEY } from './helpers.ts';

const STEP = 30_000;
const code = (secret: string, at: Date) => totpCode({ secret, algorithm: 'SHA1', digits: 6, periodSeconds: 30, at });

describe.each(DRIVERS)('built-in TOTP [%s]', (driver) => {
  // Start in the middle of a 30-second step so that ±1 step is unambiguous.
  const clock = new ManualClock(Math.floor(Date.parse('2026-03-02T10:00:00Z') / STEP) * STEP + 10_000);
  let b: TestBroker;
  let admin: Session;
  let totpServerId: string;
  let secret: string;
  let recoveryCodes: string[];

  beforeAll(async () => {
    b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: SECRET_KEY, STAGEDOOR_LOCKOUT_THRESHOLD: '50' } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const group = await create(b.app, admin, '/api/v1/groups', { name: 'Finance' });
    totpServerId = (await create(b.app, admin, '/api/v1/auth-servers', { kind: 'totp', name: 'authenticator', config: { issuer: 'Studio X' }, requiredForGroupIds: [group.id] })).id;
    await create(b.app, admin, '/api/v1/users', { username: 'tina', password: 'tina-password', groupIds: [group.id] });
  });
  afterAll(async () => b?.close());

  it('a user who must use TOTP enrols during sign-in: otpauth URI and QR code first, then the first code completes it', async () => {
    const first = await loginRaw(b.app, 'tina', 'tina-password');
    expect(first.statusCode, first.body).toBe(200);
    expect(hasSessionCookie(first)).toBe(false);
    const { mfaRequired } = first.json();
    expect(mfaRequired.factor).toBe('totp-enroll');
    const { otpauthUri, qrCode } = mfaRequired.enrollment;
    secret = mfaRequired.enrollment.secret;
    expect(otpauthUri).toMatch(/^otpauth:\/\/totp\/Studio%20X:tina\?/);
    expect(new URL(otpauthUri).searchParams.get('secret')).toBe(secret);
    expect(qrCode).toMatch(/^data:image\/png;base64,[A-Za-z0-9+/]{200,}/);
    // The secret is stored encrypted, never in clear.
    const [row] = rowsOf<{ secret_ciphertext: string }>(await b.database.db.execute(sql`select secret_ciphertext from user_totp`));
    expect(row!.secret_ciphertext).toMatch(/^v2:[0-9a-f]{16}:/);
    expect(row!.secret_ciphertext).not.toContain(secret);

    expect((await mfaRaw(b.app, mfaRequired.loginToken, '000000')).statusCode).toBe(401);
    const done = await mfaRaw(b.app, mfaRequired.loginToken, await code(secret, clock.now()));
    expect(done.statusCode, done.body).toBe(200);
    expect(hasSessionCookie(done)).toBe(true);
    recoveryCodes = done.json().recoveryCodes;
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    const trail = (await b.services.audit.list({ actor: 'tina' }, 20, 0)).items.map((a) => `${a.action}:${a.outcome}`);
    expect(trail).toEqual(expect.arrayContaining(['auth.login:success', 'mfa.totp_enroll:success', 'auth.mfa:failure', 'auth.mfa:success']));
  });

  it('signs in with the next code; a replayed code is refused, within its step and after', async () => {
    clock.advance(STEP);
    const now = await code(secret, clock.now());
    const first = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    expect(first.factor).toBe('totp');
    expect(first.enrollment).toBeUndefined();
    expect((await mfaRaw(b.app, first.loginToken, now)).statusCode).toBe(200);

    const again = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    const replay = await mfaRaw(b.app, again.loginToken, now);
    expect(replay.statusCode).toBe(401);
    expect(hasSessionCookie(replay)).toBe(false);
    const [audit] = (await b.services.audit.list({ action: 'auth.mfa', outcome: 'failure', actor: 'tina' }, 1, 0)).items;
    expect(audit!.reason).toBe('code already used');
    clock.advance(STEP / 3);
    expect((await mfaRaw(b.app, again.loginToken, now)).statusCode).toBe(401);
  });

  it('accepts a code one step old or one step ahead (clock drift), never two', async () => {
    clock.advance(3 * STEP);
    const lagging = await code(secret, new Date(clock.now().getTime() - STEP));
    let t = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    expect((await mfaRaw(b.app, t.loginToken, lagging)).statusCode).toBe(200);
    const ahead = await code(secret, new Date(clock.now().getTime() + STEP));
    t = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    expect((await mfaRaw(b.app, t.loginToken, ahead)).statusCode).toBe(200);
    clock.advance(3 * STEP);
    t = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    expect((await mfaRaw(b.app, t.loginToken, await code(secret, new Date(clock.now().getTime() - 2 * STEP)))).statusCode).toBe(401);
    expect((await mfaRaw(b.app, t.loginToken, await code(secret, new Date(clock.now().getTime() + 2 * STEP)))).statusCode).toBe(401);
  });

  it('each recovery code works once', async () => {
    const [rc] = recoveryCodes;
    let t = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    const ok = await mfaRaw(b.app, t.loginToken, rc!.toUpperCase());
    expect(ok.statusCode, ok.body).toBe(200);
    t = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    const again = await mfaRaw(b.app, t.loginToken, rc!);
    expect(again.statusCode).toBe(401);
    const me = await b.app.inject({ url: '/api/v1/me/mfa', headers: { cookie: sessionCookie(ok) } });
    expect(me.json()).toMatchObject({ totp: { enrolled: true, recoveryCodesLeft: 9 } });
    const stored = rowsOf<{ code_hash: string }>(await b.database.db.execute(sql`select code_hash from totp_recovery_codes`));
    expect(stored.map((r) => r.code_hash).join()).not.toContain(rc!.replace(/-/g, ''));
  });

  it('a pending login allows a few tries, then dies; it also expires', async () => {
    clock.advance(STEP);
    const t = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    for (let i = 0; i < 5; i++) expect((await mfaRaw(b.app, t.loginToken, '123456')).statusCode).toBe(401);
    const late = await mfaRaw(b.app, t.loginToken, await code(secret, clock.now()));
    expect(late.statusCode).toBe(401);
    expect(late.json().error.message).toMatch(/sign in again/);

    const t2 = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    clock.advance(6 * 60_000);
    expect((await mfaRaw(b.app, t2.loginToken, await code(secret, clock.now()))).statusCode).toBe(401);
  });

  it('self-service: status, no second enrolment over a confirmed one, removal needs a code; an admin can reset', async () => {
    clock.advance(STEP);
    const t = (await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired;
    const signedIn = await mfaRaw(b.app, t.loginToken, await code(secret, clock.now()));
    const tina: Session = { cookie: sessionCookie(signedIn), csrf: signedIn.json().csrfToken, userId: signedIn.json().user.id };
    expect((await b.app.inject({ method: 'POST', url: '/api/v1/me/mfa/totp', headers: as(tina) })).statusCode).toBe(409);
    expect((await b.app.inject({ method: 'DELETE', url: '/api/v1/me/mfa/totp', headers: as(tina), payload: { code: '000000' } })).statusCode).toBe(401);
    clock.advance(STEP);
    const removed = await b.app.inject({ method: 'DELETE', url: '/api/v1/me/mfa/totp', headers: as(tina), payload: { code: await code(secret, clock.now()) } });
    expect(removed.statusCode, removed.body).toBe(204);
    // Still required by the group: the next sign-in enrols again.
    expect((await loginRaw(b.app, 'tina', 'tina-password')).json().mfaRequired.factor).toBe('totp-enroll');

    // Voluntary enrolment through the API, then an admin reset.
    const begun = await b.app.inject({ method: 'POST', url: '/api/v1/me/mfa/totp', headers: as(tina) });
    expect(begun.statusCode, begun.body).toBe(201);
    const confirmed = await b.app.inject({ method: 'POST', url: '/api/v1/me/mfa/totp/confirm', headers: as(tina), payload: { code: await code(begun.json().secret, clock.now()) } });
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    expect(confirmed.json().recoveryCodes).toHaveLength(10);
    const reset = await b.app.inject({ method: 'DELETE', url: `/api/v1/users/${tina.userId}/mfa/totp`, headers: as(admin) });
    expect(reset.statusCode).toBe(204);
    expect((await b.services.audit.list({ action: 'mfa.totp_remove', targetId: tina.userId }, 5, 0)).items.map((a) => a.actorName)).toEqual(['admin', 'tina']);
  });

  it('a user who enrolled of their own accord is asked for TOTP even when nothing requires it', async () => {
    await create(b.app, admin, '/api/v1/users', { username: 'vera', password: 'vera-password' });
    const v = await login(b.app, 'vera', 'vera-password');
    const begun = (await b.app.inject({ method: 'POST', url: '/api/v1/me/mfa/totp', headers: as(v) })).json();
    expect((await b.app.inject({ method: 'POST', url: '/api/v1/me/mfa/totp/confirm', headers: as(v), payload: { code: await code(begun.secret, clock.now()) } })).statusCode).toBe(200);
    expect((await loginRaw(b.app, 'vera', 'vera-password')).json().mfaRequired.factor).toBe('totp');
  });

  it('a disabled required factor fails closed', async () => {
    await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${totpServerId}`, headers: as(admin), payload: { enabled: false } });
    try {
      const res = await loginRaw(b.app, 'tina', 'tina-password');
      expect(res.statusCode).toBe(503);
      expect(res.json().error.message).toContain('"authenticator" that this account requires is disabled');
    } finally {
      await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${totpServerId}`, headers: as(admin), payload: { enabled: true } });
    }
  });
});

describe('TOTP replay across two broker nodes [postgres]', () => {
  const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP + 10_000);
  let a: TestBroker;
  let other: Broker;

  beforeAll(async () => {
    a = await createTestBroker('postgres', { clock, env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    const config = loadConfig({}, { STAGEDOOR_JOBS: 'off', STAGEDOOR_NODE_ID: 'node-b', STAGEDOOR_SECRET_KEY: SECRET_KEY });
    other = await assembleBroker(config, await openPostgres({ url: a.testDb.url!, poolSize: 5, log: silentLog }), { log: silentLog, clock });
  });
  afterAll(async () => {
    await other?.close();
    await a?.close();
  });

  it('the same code sent to both nodes at once signs in exactly once', async () => {
    const admin = await login(a.app, 'admin', ADMIN_PASSWORD);
    const group = await create(a.app, admin, '/api/v1/groups', { name: 'Secure' });
    await create(a.app, admin, '/api/v1/auth-servers', { kind: 'totp', name: 'totp', requiredForGroupIds: [group.id] });
    await create(a.app, admin, '/api/v1/users', { username: 'nina', password: 'nina-password', groupIds: [group.id] });
    const enrol = (await loginRaw(a.app, 'nina', 'nina-password')).json().mfaRequired;
    expect((await mfaRaw(other.app, enrol.loginToken, await code(enrol.enrollment.secret, clock.now()))).statusCode).toBe(200);
    clock.advance(STEP);
    const c = await code(enrol.enrollment.secret, clock.now());
    for (let round = 0; round < 3; round++) {
      const onA = (await loginRaw(a.app, 'nina', 'nina-password')).json().mfaRequired;
      const onB = (await loginRaw(other.app, 'nina', 'nina-password')).json().mfaRequired;
      const results = await Promise.all([mfaRaw(a.app, onA.loginToken, c), mfaRaw(other.app, onB.loginToken, c)]);
      const ok = results.filter((r) => r.statusCode === 200).length;
      // Round 0: one of them wins the step; later rounds: the step is spent on both nodes.
      expect(ok).toBe(round === 0 ? 1 : 0);
    }
  });
});
