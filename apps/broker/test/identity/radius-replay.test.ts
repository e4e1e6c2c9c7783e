import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/migrate.ts';
import { ADMIN_PASSWORD, createTestBroker, login, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { startLenientRadius, type LenientRadius } from '../../../../test/support/directory/lenient-radius.ts';
import { create, hasSessionCookie, loginRaw, mfaRaw, SECRET_KEY } from './helpers.ts';

const SECRET = 'lenient-Shared-secret-7c1e';
const ANSWERS = 5;

/**
 * A RADIUS primary that challenges, then accepts the same State as often as it is answered (as a
 * push service may): the broker's real RADIUS client talks to it over UDP.
 */
describe.each(DRIVERS)('RADIUS challenge answered several times at once [%s]', (driver) => {
  let radius: LenientRadius;
  let b: TestBroker;

  beforeAll(async () => {
    radius = await startLenientRadius({ secret: SECRET, username: 'lena', password: 'lena-radius-pass', code: '135790', holdUntil: ANSWERS });
    b = await createTestBroker(driver, { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY, STAGEDOOR_MFA_MAX_ATTEMPTS: String(ANSWERS) } });
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    await create(b.app, admin, '/api/v1/auth-servers', {
      kind: 'radius',
      name: 'push-service',
      purpose: 'primary',
      sharedSecret: SECRET,
      // One try with a long wait: the server holds its accepts until every answer has arrived.
      config: { servers: [{ host: radius.host, port: radius.port }], timeoutMs: 30_000, retries: 0 },
    });
  }, 60_000);
  afterAll(async () => {
    await radius?.close();
    await b?.close();
  });

  it('five simultaneous correct answers to one RADIUS challenge open one session, not five', async () => {
    const first = await loginRaw(b.app, 'lena', 'lena-radius-pass');
    expect(first.statusCode, first.body).toBe(200);
    const { mfaRequired } = first.json();
    expect(mfaRequired).toMatchObject({ factor: 'radius', prompt: 'Enter the code we sent you' });

    const answers = await Promise.all(Array.from({ length: ANSWERS }, () => mfaRaw(b.app, mfaRequired.loginToken, '135790')));
    // The server really accepted every one of them.
    expect(radius.accepted()).toBe(ANSWERS);
    const won = answers.filter((r) => r.statusCode === 200);
    expect(won, answers.map((r) => `${r.statusCode} ${r.body}`).join('\n')).toHaveLength(1);
    expect(hasSessionCookie(won[0]!)).toBe(true);
    for (const lost of answers.filter((r) => r !== won[0])) {
      expect(lost.statusCode).toBe(401);
      expect(lost.json().error.code).toBe('mfa_failed');
      expect(hasSessionCookie(lost)).toBe(false);
    }
    const [row] = rowsOf<{ n: number }>(await b.database.db.execute(sql`select count(*)::int as n from sessions s join users u on u.id = s.user_id where u.username = 'lena'`));
    expect(row!.n).toBe(1);
    expect((await b.services.audit.list({ action: 'auth.login', outcome: 'success', actor: 'lena' }, 10, 0)).items).toHaveLength(1);
  });
});
