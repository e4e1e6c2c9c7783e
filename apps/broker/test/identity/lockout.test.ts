import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.ts';
import { addressKey } from '../../src/domain/identity/login-throttle.service.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { create, hasSessionCookie, loginRaw } from './helpers.ts';

describe('client address keys', () => {
  it.each([
    ['198.51.100.7', '198.51.100.7'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8::1', '2001:db8:0:0::/64'],
    ['not an address', null],
  ])('%s → %s', (address, key) => expect(addressKey(address)).toBe(key));
});

describe.each(DRIVERS)('rate limiting and lockout [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T10:00:00Z');
  let b: TestBroker;
  let admin: Session;
  let victimId: string;
  const from = (ip: string) => ({ 'x-forwarded-for': ip });

  beforeAll(async () => {
    b = await createTestBroker(driver, {
      clock,
      env: { STAGEDOOR_LOCKOUT_THRESHOLD: '3', STAGEDOOR_LOCKOUT_ADDRESS_THRESHOLD: '6', STAGEDOOR_LOCKOUT_WINDOW_MINUTES: '10', STAGEDOOR_LOCKOUT_MINUTES: '5', STAGEDOOR_TRUSTED_PROXIES: '127.0.0.1' },
    });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    victimId = (await create(b.app, admin, '/api/v1/users', { username: 'victim', password: 'victim-password', email: 'victim@studio.test' })).id;
    await create(b.app, admin, '/api/v1/users', { username: 'neighbour', password: 'neighbour-password' });
  });
  afterAll(async () => b?.close());

  it('locks an account after N failures; the lock answers the same whether the password is right or not', async () => {
    for (let i = 0; i < 3; i++) expect((await loginRaw(b.app, 'victim', `wrong-${i}`, from('203.0.113.1'))).statusCode).toBe(401);
    const right = await loginRaw(b.app, 'VICTIM', 'victim-password', from('203.0.113.2'));
    const wrong = await loginRaw(b.app, 'victim', 'wrong-again', from('203.0.113.3'));
    for (const res of [right, wrong]) {
      expect(res.statusCode).toBe(429);
      expect(res.json().error.code).toBe('login_locked');
      expect(res.headers['retry-after']).toBe('300');
      expect(hasSessionCookie(res)).toBe(false);
    }
    const strip = (r: typeof right) => ({ ...r.json().error, requestId: undefined });
    expect(strip(right)).toEqual(strip(wrong));
    const lockouts = await b.services.audit.list({ action: 'auth.lockout' }, 10, 0);
    expect(lockouts.items).toHaveLength(1);
    expect(lockouts.items[0]).toMatchObject({ targetId: 'account:victim', actorName: 'victim', sourceAddress: '203.0.113.1', details: { failures: 3, authServer: 'local' } });
    const refused = await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'VICTIM' }, 1, 0);
    expect(refused.items[0]!.reason).toBe('account locked');
  });

  it('an admin sees the lock and unlocks the user, audited', async () => {
    const list = await b.app.inject({ url: '/api/v1/login-throttles', headers: as(admin) });
    expect(list.json().items).toEqual(expect.arrayContaining([expect.objectContaining({ scope: 'account', key: 'victim', failureCount: 3, lockedUntil: expect.any(String) })]));
    const res = await b.app.inject({ method: 'POST', url: `/api/v1/users/${victimId}/unlock`, headers: as(admin) });
    expect(res.statusCode).toBe(200);
    expect(res.json().cleared).toBeGreaterThanOrEqual(1);
    expect((await loginRaw(b.app, 'victim', 'victim-password', from('203.0.113.4'))).statusCode).toBe(200);
    expect((await b.services.audit.list({ action: 'user.unlock', targetId: victimId }, 1, 0)).items[0]!.actorName).toBe('admin');
  });

  it('a lock ends by itself; failures outside the window do not add up', async () => {
    for (let i = 0; i < 3; i++) await loginRaw(b.app, 'victim', 'nope', from('203.0.113.5'));
    expect((await loginRaw(b.app, 'victim', 'victim-password', from('203.0.113.5'))).statusCode).toBe(429);
    clock.advance(5 * 60_000 + 1000);
    expect((await loginRaw(b.app, 'victim', 'victim-password', from('203.0.113.5'))).statusCode).toBe(200);
    // Two failures, a long pause, two more: never three within ten minutes.
    await loginRaw(b.app, 'victim', 'nope', from('203.0.113.6'));
    await loginRaw(b.app, 'victim', 'nope', from('203.0.113.6'));
    clock.advance(11 * 60_000);
    await loginRaw(b.app, 'victim', 'nope', from('203.0.113.6'));
    await loginRaw(b.app, 'victim', 'nope', from('203.0.113.6'));
    expect((await loginRaw(b.app, 'victim', 'victim-password', from('203.0.113.6'))).statusCode).toBe(200);
  });

  it('unknown names are throttled too, so a lock does not reveal which accounts exist', async () => {
    for (let i = 0; i < 3; i++) expect((await loginRaw(b.app, 'ghost', 'x', from('203.0.113.7'))).statusCode).toBe(401);
    expect((await loginRaw(b.app, 'ghost', 'x', from('203.0.113.8'))).statusCode).toBe(429);
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/login-throttles/unlock', headers: as(admin), payload: { scope: 'account', key: 'Ghost' } });
    expect(res.json()).toEqual({ cleared: 1 });
  });

  it('locks a source address that tries many accounts, leaving other addresses alone; an admin unlocks it', async () => {
    clock.advance(60 * 60_000);
    for (const name of ['a1', 'a2', 'a3', 'a4', 'a5', 'a6']) await loginRaw(b.app, name, 'spray', from('192.0.2.66'));
    const locked = await loginRaw(b.app, 'neighbour', 'neighbour-password', from('192.0.2.66'));
    expect(locked.statusCode).toBe(429);
    expect((await loginRaw(b.app, 'neighbour', 'neighbour-password', from('192.0.2.67'))).statusCode).toBe(200);
    const [lockout] = (await b.services.audit.list({ action: 'auth.lockout' }, 1, 0)).items;
    expect(lockout!.targetId).toBe('address:192.0.2.66');
    const unlock = await b.app.inject({ method: 'POST', url: '/api/v1/login-throttles/unlock', headers: as(admin), payload: { scope: 'address', key: '192.0.2.66' } });
    expect(unlock.statusCode).toBe(200);
    expect((await loginRaw(b.app, 'neighbour', 'neighbour-password', from('192.0.2.66'))).statusCode).toBe(200);
  });

  it('only admins unlock; operators and auditors see the throttles', async () => {
    await create(b.app, admin, '/api/v1/users', { username: 'op', password: 'op-password', role: 'operator' });
    const op = await login(b.app, 'op', 'op-password');
    expect((await b.app.inject({ url: '/api/v1/login-throttles', headers: as(op) })).statusCode).toBe(200);
    expect((await b.app.inject({ method: 'POST', url: `/api/v1/users/${victimId}/unlock`, headers: as(op) })).statusCode).toBe(403);
  });

  it('an admin ends every session of a user ("log out everywhere")', async () => {
    const s1 = await login(b.app, 'neighbour', 'neighbour-password');
    const s2 = await login(b.app, 'neighbour', 'neighbour-password');
    const res = await b.app.inject({ method: 'POST', url: `/api/v1/users/${s1.userId}/logout-all`, headers: as(admin) });
    expect(res.json().sessionsEnded).toBeGreaterThanOrEqual(2);
    for (const s of [s1, s2]) expect((await b.app.inject({ url: '/api/v1/me', headers: as(s) })).statusCode).toBe(401);
  });
});
