import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.ts';
import { totpCode } from '../../src/providers/directory/totp.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { create, loginRaw, SECRET_KEY } from './helpers.ts';

const STEP = 30_000;
const code = (secret: string, at: Date) => totpCode({ secret, algorithm: 'SHA1', digits: 6, periodSeconds: 30, at });

/** A broker with the built-in TOTP factor and a user who enrolled it through the API. */
async function brokerWithEnrolledUser(driver: (typeof DRIVERS)[number], clock: ManualClock, env: Record<string, string>) {
  const b = await createTestBroker(driver, { clock, env: { STAGEDOOR_SECRET_KEY: SECRET_KEY, ...env } });
  const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
  await create(b.app, admin, '/api/v1/auth-servers', { kind: 'totp', name: 'authenticator' });
  await create(b.app, admin, '/api/v1/users', { username: 'gus', password: 'gus-password' });
  const gus = await login(b.app, 'gus', 'gus-password');
  const begun = await b.app.inject({ method: 'POST', url: '/api/v1/me/mfa/totp', headers: as(gus) });
  const secret: string = begun.json().secret;
  const confirmed = await b.app.inject({ method: 'POST', url: '/api/v1/me/mfa/totp/confirm', headers: as(gus), payload: { code: await code(secret, clock.now()) } });
  expect(confirmed.statusCode, confirmed.body).toBe(200);
  return { b, gus, secret };
}

describe.each(DRIVERS)('self-service MFA changes need a code, and guessing it is limited [%s]', (driver) => {
  const clock = new ManualClock(Math.floor(Date.parse('2026-03-02T10:00:00Z') / STEP) * STEP + 10_000);
  let b: TestBroker;
  let gus: Session;
  let secret: string;

  beforeAll(async () => {
    ({ b, gus, secret } = await brokerWithEnrolledUser(driver, clock, { STAGEDOOR_LOCKOUT_THRESHOLD: '3' }));
  });
  afterAll(async () => b?.close());

  it('guessing codes on the self-service MFA routes locks the account: a stolen session is no code oracle', async () => {
    const guesses = [
      { method: 'DELETE', url: '/api/v1/me/mfa/totp' },
      { method: 'POST', url: '/api/v1/me/mfa/recovery-codes' },
      { method: 'DELETE', url: '/api/v1/me/mfa/totp' },
    ] as const;
    for (const [i, g] of guesses.entries()) {
      const res = await b.app.inject({ method: g.method, url: g.url, headers: as(gus), payload: { code: String(100000 + i) } });
      expect(res.statusCode, res.body).toBe(401);
      expect(res.json().error.code).toBe('mfa_failed');
    }
    // Locked now: even the right code changes nothing, and the password no longer signs in.
    clock.advance(STEP);
    const right = await b.app.inject({ method: 'DELETE', url: '/api/v1/me/mfa/totp', headers: as(gus), payload: { code: await code(secret, clock.now()) } });
    expect(right.statusCode, right.body).toBe(429);
    expect(right.json().error.code).toBe('login_locked');
    expect((await b.app.inject({ url: '/api/v1/me/mfa', headers: as(gus) })).json().totp.enrolled).toBe(true);
    expect((await loginRaw(b.app, 'gus', 'gus-password')).statusCode).toBe(429);
    const lockouts = await b.services.audit.list({ action: 'auth.lockout', actor: 'gus' }, 5, 0);
    expect(lockouts.items.map((a) => a.targetId)).toContain('account:gus');
    const failures = await b.services.audit.list({ action: 'auth.mfa', outcome: 'failure', actor: 'gus' }, 5, 0);
    expect(failures.items).toHaveLength(3);
    expect(failures.items[0]!.details).toMatchObject({ factor: 'totp', stage: 'self-service' });

    // The lock ends by itself; then the right code works.
    clock.advance(16 * 60_000);
    const later = await b.app.inject({ method: 'POST', url: '/api/v1/me/mfa/recovery-codes', headers: as(gus), payload: { code: await code(secret, clock.now()) } });
    expect(later.statusCode, later.body).toBe(200);
    expect(later.json().recoveryCodes).toHaveLength(10);
  });
});

describe('self-service MFA routes are rate-limited per user', () => {
  const clock = new ManualClock(Math.floor(Date.parse('2026-03-02T10:00:00Z') / STEP) * STEP + 10_000);
  let b: TestBroker;
  let gus: Session;

  beforeAll(async () => {
    ({ b, gus } = await brokerWithEnrolledUser('pglite', clock, { STAGEDOOR_LOCKOUT_THRESHOLD: '50', STAGEDOOR_LOGIN_RATE_PER_MINUTE: '3' }));
  });
  afterAll(async () => b?.close());

  it('a burst of code guesses on one route is cut off with 429 before the lockout threshold', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await b.app.inject({ method: 'DELETE', url: '/api/v1/me/mfa/totp', headers: as(gus), payload: { code: String(200000 + i) } })).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const limited = await b.app.inject({ method: 'DELETE', url: '/api/v1/me/mfa/totp', headers: as(gus), payload: { code: '299999' } });
    expect(limited.json().error.code).toBe('rate_limited');
  });
});
