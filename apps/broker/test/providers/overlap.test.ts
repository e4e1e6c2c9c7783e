import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import type { TagMatch } from '../../src/db/schema/providers.ts';
import { isUniqueViolation } from '../../src/domain/errors.ts';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { instanceScope, providersOverlap, tagFiltersOverlap, type ProviderReach } from '../../src/domain/providers/overlap.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { providerFor, startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../../../../test/support/ec2.ts';

describe('tag filters that can match one instance', () => {
  it.each<[TagMatch, TagMatch, boolean, string]>([
    [{}, {}, true, 'two empty filters see everything'],
    [{}, { site: ['studio'] }, true, 'an empty filter sees what any filter sees'],
    [{ site: ['studio'] }, { site: ['sandbox'] }, false, 'one key, no value in common'],
    [{ site: ['studio', 'sandbox'] }, { site: ['sandbox'] }, true, 'one value in common'],
    [{ site: [] }, { site: ['sandbox'] }, true, 'key present (any value) meets a value'],
    [{ 'stagedoor:managed': ['true'] }, { site: ['sandbox'] }, true, 'different keys: one instance can carry both tags'],
    [{ 'stagedoor:managed': ['true'], site: ['studio'] }, { site: ['sandbox'] }, false, 'the example and the sandbox'],
  ])('%j and %j → %s (%s)', (a, b, expected, _why) => {
    expect(tagFiltersOverlap(a, b)).toBe(expected);
    expect(tagFiltersOverlap(b, a)).toBe(expected);
  });
});

describe('providers that overlap', () => {
  const base: ProviderReach = { id: 'a', name: 'a', kind: 'aws-ec2', enabled: true, region: 'us-east-1', endpoint: 'http://127.0.0.1:4599', credentialsMode: 'access-key', accessKeyId: 'AKIA1', tagFilter: {} };
  const other = { ...base, id: 'b', name: 'b' };
  it.each([
    ['same endpoint and region, filters that meet', {}, true],
    ['the endpoint spelled with another case and a trailing slash', { endpoint: 'HTTP://127.0.0.1:4599/' }, true],
    ['another endpoint', { endpoint: 'http://127.0.0.1:4600' }, false],
    ['another region', { region: 'eu-west-1' }, false],
    ['disjoint filters', { tagFilter: { site: ['x'] } }, false],
    ['disabled', { enabled: false }, false],
    ['a static provider', { kind: 'static' }, false],
  ] as const)('%s → %s', (_what, change, expected) => {
    const a: ProviderReach = { ...base, tagFilter: 'tagFilter' in change ? { site: ['y'] } : {} };
    expect(providersOverlap(a, { ...other, ...change } as ProviderReach)).toBe(expected);
  });
  it('on AWS itself only the same credentials are taken for the same account', () => {
    const aws = { ...base, endpoint: null };
    expect(providersOverlap(aws, { ...aws, id: 'b' })).toBe(true);
    expect(providersOverlap(aws, { ...aws, id: 'b', accessKeyId: 'AKIA2' })).toBe(false);
    expect(providersOverlap({ ...aws, credentialsMode: 'default-chain', accessKeyId: null }, { ...aws, id: 'b', credentialsMode: 'default-chain', accessKeyId: null })).toBe(true);
  });
  it('the scope the database computes is the one the code computes', () => {
    expect(instanceScope({ id: 'x', kind: 'aws-ec2', endpoint: 'HTTP://Emu:4599//', region: 'us-east-1' })).toBe('ec2 http://emu:4599 us-east-1');
    expect(instanceScope({ id: 'x', kind: 'aws-ec2', endpoint: null, region: 'us-east-1' })).toBe('ec2 aws us-east-1');
  });
});

describe.each(DRIVERS)('overlapping providers [%s]', (driver) => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let admin: Session;
  let instanceIds: string[];

  beforeAll(async () => {
    emu = await startTestEmulator();
    b = await createTestBroker(driver, { env: { STAGEDOOR_SECRET_KEY: 'cd'.repeat(32) } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const launched = await providerFor(emu).launch({ imageId: DEMO_AMI_ID, name: 'edit', tags: { site: 'studio' }, clientToken: 'studio-3', count: 3 });
    instanceIds = launched.map((i) => i.id).sort();
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  const provider = (name: string, tagFilter: Record<string, string[]>, endpoint = emu.url) => ({
    kind: 'aws-ec2',
    name,
    region: 'us-east-1',
    endpoint,
    credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET },
    tagFilter,
  });
  const create = (body: object) => b.app.inject({ method: 'POST', url: '/api/v1/providers', headers: as(admin), payload: body });
  const patch = (id: string, body: object) => b.app.inject({ method: 'PATCH', url: `/api/v1/providers/${id}`, headers: as(admin), payload: body });
  const q = async <T>(query: ReturnType<typeof sql>) => rowsOf<T>(await b.database.db.execute(query));

  it('refuses, with both names, a provider that would see instances another one owns; disjoint filters live side by side', async () => {
    const studio = await create(provider('studio', { site: ['studio'] }));
    expect(studio.statusCode).toBe(201);
    const all = await create(provider('everything', {}));
    expect(all.statusCode).toBe(409);
    expect(all.json().error.message).toMatch(/provider "everything" would see instances that provider "studio" already owns/);
    expect(all.json().error.details).toEqual({ providers: ['everything', 'studio'] });
    // The same endpoint spelled differently is the same endpoint.
    expect((await create(provider('shouting', {}, `${emu.url.toUpperCase()}/`))).statusCode).toBe(409);
    expect(await q<{ n: number }>(sql`select count(*)::int as n from providers`)).toEqual([{ n: 1 }]);

    const sandbox = await create(provider('sandbox', { site: ['sandbox'] }));
    expect(sandbox.statusCode).toBe(201);
    const widened = await patch(sandbox.json().id, { tagFilter: {} });
    expect(widened.statusCode).toBe(409);
    expect(widened.json().error.message).toContain('provider "sandbox" would see instances that provider "studio" already owns');
    // Disabled, it sees nothing; enabling it again is checked again.
    expect((await patch(sandbox.json().id, { enabled: false, tagFilter: {} })).statusCode).toBe(200);
    expect((await patch(sandbox.json().id, { enabled: true })).statusCode).toBe(409);
    expect((await patch(sandbox.json().id, { tagFilter: { site: ['sandbox'] } })).statusCode).toBe(200);
    expect((await patch(sandbox.json().id, { enabled: true })).statusCode).toBe(200);
  });

  it('an instance has one owner whatever gets past the check: sync skips it naming the owner, the database refuses a second row, cost counts it once', async () => {
    const [studio, sandbox] = await q<{ id: string }>(sql`select id from providers order by name desc`);
    expect((await b.services.providers.syncNow(systemActor, studio!.id)).counts).toMatchObject({ seen: 3, created: 3 });
    // Written around the service (an old broker, a hand edit): the sandbox now sees everything.
    await b.database.db.execute(sql`update providers set tag_filter = '{}'::jsonb where id = ${sandbox!.id}`);
    const sync = await b.services.providers.syncNow(systemActor, sandbox!.id);
    expect(sync).toMatchObject({ status: 'ok', counts: { seen: 3, created: 0, skipped: 3 } });
    expect(sync.message).toContain('provider "studio"');
    expect(sync.message).toContain(instanceIds[0]);
    const owners = await q<{ external_id: string; n: number }>(sql`select external_id, count(*)::int as n from workstations group by external_id order by external_id`);
    expect(owners).toEqual(instanceIds.map((id) => ({ external_id: id, n: 1 })));

    // The constraint itself: a second row for an owned instance is refused, through any code path.
    const now = new Date();
    const second = await b.database.db
      .execute(sql`insert into workstations (provider_id, external_id, name, power_state, created_at, updated_at) values (${sandbox!.id}, ${instanceIds[0]!}, 'copy', 'running', ${now}, ${now})`)
      .then(() => null, (err: unknown) => err);
    expect(isUniqueViolation(second, 'workstations_instance_scope_external_key')).toBe(true);

    const report = await b.services.reports.cost({ from: new Date(now.getTime() - 3_600_000), to: new Date(now.getTime() + 3_600_000), groupBy: 'instanceType' });
    expect(report.total.machines).toBe(3);
  });

  it('a duplicate left from before the constraint (no scope) is never billed, and its provider\'s next sync retires it', async () => {
    const [, sandbox] = await q<{ id: string }>(sql`select id from providers order by name desc`);
    const now = new Date();
    // What migration 0010 leaves for a second copy: the row, its history, and no scope.
    const [dup] = await q<{ id: string }>(sql`insert into workstations (provider_id, external_id, name, power_state, created_at, updated_at)
      values (${sandbox!.id}, 'i-placeholder', 'legacy-copy', 'running', ${now}, ${now}) returning id`);
    await b.database.db.execute(sql`update workstations set external_id = ${instanceIds[1]!}, instance_scope = null where id = ${dup!.id}`);
    await b.database.db.execute(sql`insert into workstation_power_history (workstation_id, state, instance_type, from_at) values (${dup!.id}, 'running', 't3.micro', ${new Date(now.getTime() - 60_000)})`);
    const report = await b.services.reports.cost({ from: new Date(now.getTime() - 3_600_000), to: new Date(now.getTime() + 3_600_000), groupBy: 'instanceType' });
    expect(report.total.machines).toBe(3);
    const sync = await b.services.providers.syncNow(systemActor, sandbox!.id);
    expect(sync.counts).toMatchObject({ skipped: 3, terminated: 1 });
    expect(await q<{ power_state: string }>(sql`select power_state from workstations where id = ${dup!.id}`)).toEqual([{ power_state: 'terminated' }]);
  });
});
