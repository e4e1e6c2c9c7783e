import { randomBytes } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.ts';
import { authServers } from '../src/db/schema/index.ts';
import { ManualClock } from '../src/domain/clock.ts';
import { cliActor } from '../src/domain/identity/actor.ts';
import { secretKeyId } from '../src/domain/secrets/secret-box.ts';
import { Metrics } from '../src/observability/metrics.ts';
import { totpCode } from '../src/providers/directory/totp.ts';
import { createServices } from '../src/services.ts';
import { createTestDatabase, DRIVERS, silentLog, type TestDatabase } from '../../../test/support/database.ts';
import { sealV1 } from '../../../test/support/sealed-v1.ts';

const OLD_KEY = randomBytes(32).toString('hex');
const NEW_KEY = randomBytes(32).toString('hex');
const actor = cliActor('test');

describe.each(DRIVERS)('rotating the secret key [%s]', (driver) => {
  let t: TestDatabase;
  // One database per driver; the tests run in order and each names what it adds.
  beforeAll(async () => {
    t = await createTestDatabase(driver);
  });
  afterAll(async () => t?.close());

  const clock = new ManualClock('2030-01-07T10:00:00Z');
  const servicesWith = (env: Record<string, string>) =>
    createServices({ config: loadConfig({}, env), database: t.database, clock, log: silentLog, metrics: new Metrics(() => t.database.poolStats()) });

  it('every stored secret (old v1 format too) is re-sealed under the new key in batches, a rerun finds nothing to do, and the old key can then go', async () => {
    const before = servicesWith({ STAGEDOOR_SECRET_KEY: OLD_KEY });
    // One secret of each kind: a cloud key, RADIUS shared secrets (one in the format before key ids), a TOTP seed.
    const provider = await before.providers.create(actor, { kind: 'aws-ec2', name: 'cloud', region: 'eu-west-1', credentials: { mode: 'access-key', accessKeyId: 'AKIAROTATE0000000000', secretAccessKey: 'cloud-secret-key' }, tagFilter: {}, syncIntervalSeconds: 300, enabled: true });
    const radius = (n: number) => ({ kind: 'radius' as const, name: `radius-${n}`, enabled: true, purpose: 'second-factor' as const, config: { servers: [{ host: '127.0.0.1', port: 1812 }] }, sharedSecret: `shared-secret-${n}` });
    for (let n = 0; n < 5; n++) await before.authServers.create(actor, radius(n) as never);
    const v1 = (await before.authServers.findByName('radius-4'))!.row.id;
    await t.database.db.update(authServers).set({ secretCiphertext: sealV1(Buffer.from(OLD_KEY, 'hex'), JSON.stringify({ sharedSecret: 'shared-secret-4' }), `auth_servers:${v1}`) }).where(eq(authServers.id, v1));
    const user = await before.users.create(actor, { username: 'ana', password: 'ana-password-1', role: 'user', disabled: false, groupIds: [] });
    const enrollment = await before.totp.begin(user, 'Stagedoor');
    expect(await before.totp.confirm(actor, user.id, await totpCode({ secret: enrollment.secret, algorithm: 'SHA1', digits: 6, periodSeconds: 30, at: clock.now() }))).not.toBeNull();

    const rotating = servicesWith({ STAGEDOOR_SECRET_KEY: NEW_KEY, STAGEDOOR_SECRET_KEY_PREVIOUS: OLD_KEY });
    const first = await rotating.secretRotation.rotate(actor, { batchSize: 2 });
    expect(first).toMatchObject({ keyId: secretKeyId(Buffer.from(NEW_KEY, 'hex')), resealed: { providers: 1, auth_servers: 5, user_totp: 1 }, current: 0, failed: [], busy: 0 });
    // Batches of two: three audit rows for the five auth servers.
    const audit = (await rotating.audit.list({ action: 'secrets.rotate' }, 50, 0)).items;
    expect(audit.filter((a) => a.targetType === 'auth_servers').map((a) => a.details.resealed)).toEqual([1, 2, 2]);

    const again = await rotating.secretRotation.rotate(actor, { batchSize: 2 });
    expect(again).toMatchObject({ resealed: { providers: 0, auth_servers: 0, user_totp: 0 }, current: 7, failed: [], busy: 0 });

    // With the new key alone, each secret opens through its own service.
    const after = servicesWith({ STAGEDOOR_SECRET_KEY: NEW_KEY });
    expect(() => after.registry.build(provider)).toThrow(/STAGEDOOR_SECRET_KEY_PREVIOUS/); // the row as read before
    const fresh = await after.providers.get(provider.id);
    expect(() => after.registry.build(fresh)).not.toThrow();
    for (const n of [3, 4]) expect((await after.authServers.upsertByName(actor, radius(n) as never)).action).toBe('unchanged');
    clock.advance(60_000);
    expect(await after.totp.verify(user.id, await totpCode({ secret: enrollment.secret, algorithm: 'SHA1', digits: 6, periodSeconds: 30, at: clock.now() }))).toMatchObject({ ok: true });
  });

  it('a secret no configured key opens is reported and left as it is, and the others are still re-sealed', async () => {
    const lost = servicesWith({ STAGEDOOR_SECRET_KEY: randomBytes(32).toString('hex') });
    const orphan = await lost.authServers.create(actor, { kind: 'radius', name: 'orphan', enabled: true, purpose: 'second-factor', config: { servers: [{ host: '127.0.0.1', port: 1812 }] }, sharedSecret: 'lost-secret' } as never);
    const before = servicesWith({ STAGEDOOR_SECRET_KEY: OLD_KEY });
    await before.authServers.create(actor, { kind: 'radius', name: 'kept', enabled: true, purpose: 'second-factor', config: { servers: [{ host: '127.0.0.1', port: 1812 }] }, sharedSecret: 'kept-secret' } as never);
    const [stored] = await t.database.db.select({ sealed: authServers.secretCiphertext }).from(authServers).where(eq(authServers.id, orphan.row.id));

    const r = await servicesWith({ STAGEDOOR_SECRET_KEY: NEW_KEY, STAGEDOOR_SECRET_KEY_PREVIOUS: OLD_KEY }).secretRotation.rotate(actor);
    expect(r.resealed.auth_servers).toBe(1);
    expect(r.failed).toEqual([{ table: 'auth_servers', id: orphan.row.id, error: expect.stringContaining('STAGEDOOR_SECRET_KEY_PREVIOUS') }]);
    const [still] = await t.database.db.select({ sealed: authServers.secretCiphertext }).from(authServers).where(eq(authServers.id, orphan.row.id));
    expect(still!.sealed).toBe(stored!.sealed);
  });

  it('without STAGEDOOR_SECRET_KEY, rotation is refused with a message naming it', async () => {
    await expect(servicesWith({}).secretRotation.rotate(actor)).rejects.toThrow(/STAGEDOOR_SECRET_KEY/);
  });
});

