import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { startFreeRadius, type FreeRadius } from '../../../../test/support/directory/freeradius.ts';
import { create, hasSessionCookie, loginRaw, SECRET_KEY } from './helpers.ts';

const SECRET = 'radius-Shared-secret-77ab';
const USERS = ['olga\tCleartext-Password := "olga-radius-pass"', 'pia\tCleartext-Password := "pia-radius-pass"', ''].join('\n');

/**
 * BlastRADIUS (CVE-2024-3596): an attacker on the path forges an Access-Accept from an
 * Access-Reject with an MD5 chosen-prefix collision; only a Message-Authenticator in the answer
 * stops it. FreeRADIUS 3.2.1 as Debian ships it sends none (an unpatched server); configured to sign
 * its answers, it stands for a patched one.
 */
describe('RADIUS Message-Authenticator (BlastRADIUS) against FreeRADIUS', () => {
  let unsigned: FreeRadius;
  let signed: FreeRadius;
  let b: TestBroker;
  let admin: Session;

  beforeAll(async () => {
    unsigned = await startFreeRadius({ secret: SECRET, users: USERS, messageAuthenticator: false });
    signed = await startFreeRadius({ secret: SECRET, users: USERS, messageAuthenticator: true });
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
  }, 120_000);
  afterAll(async () => {
    await unsigned?.stop();
    await signed?.stop();
    await b?.close();
  });

  const server = (name: string, radius: FreeRadius, config: Record<string, unknown> = {}) =>
    create(b.app, admin, '/api/v1/auth-servers', { kind: 'radius', name, purpose: 'primary', sharedSecret: SECRET, config: { servers: [{ host: radius.host, port: radius.port }], timeoutMs: 1000, retries: 0, ...config } });

  it('a new RADIUS server requires a Message-Authenticator by default', async () => {
    const s = await server('defaults', signed);
    expect(s.config).toMatchObject({ requireMessageAuthenticator: true });
    await b.app.inject({ method: 'DELETE', url: `/api/v1/auth-servers/${s.id}`, headers: as(admin) });
  });

  it('an answer without a Message-Authenticator is refused when the server requires one: no sign-in (BlastRADIUS forgery)', async () => {
    const s = await server('unpatched', unsigned);
    try {
      const res = await loginRaw(b.app, 'olga', 'olga-radius-pass');
      expect(res.statusCode, res.body).toBe(503);
      expect(hasSessionCookie(res)).toBe(false);
      const [audit] = (await b.services.audit.list({ action: 'auth.login', outcome: 'failure', actor: 'olga' }, 1, 0)).items;
      expect(audit!.details.error).toMatch(/unpatched.*without a Message-Authenticator/);
      const test = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${s.id}/test`, headers: as(admin), payload: {} });
      expect(test.json()).toMatchObject({ ok: false, message: expect.stringContaining('Message-Authenticator') });

      // Turned off on purpose (an old server the admin cannot update yet): the answer is taken as before.
      const config = { ...(s.config as object), requireMessageAuthenticator: false };
      const off = await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${s.id}`, headers: as(admin), payload: { config } });
      expect(off.statusCode, off.body).toBe(200);
      expect((await loginRaw(b.app, 'olga', 'olga-radius-pass')).statusCode).toBe(200);
    } finally {
      await b.app.inject({ method: 'DELETE', url: `/api/v1/auth-servers/${s.id}`, headers: as(admin) });
    }
  });

  it('a server that signs its answers is accepted when one is required: Accept signs in, Reject is a wrong password', async () => {
    const s = await server('patched', signed);
    try {
      const wrong = await loginRaw(b.app, 'pia', 'not-pias-pass');
      expect(wrong.statusCode, wrong.body).toBe(401);
      const res = await loginRaw(b.app, 'pia', 'pia-radius-pass');
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json().user).toMatchObject({ username: 'pia', authServerId: s.id });
      const test = await b.app.inject({ method: 'POST', url: `/api/v1/auth-servers/${s.id}/test`, headers: as(admin), payload: {} });
      expect(test.json()).toMatchObject({ ok: true, details: { answer: 'reject' } });
    } finally {
      await b.app.inject({ method: 'PATCH', url: `/api/v1/auth-servers/${s.id}`, headers: as(admin), payload: { enabled: false } });
    }
  });
});
