import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { ManualClock } from '../../src/domain/clock.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { TEST_ACCESS_KEY, TEST_SECRET, startTestEmulator } from '../../../../test/support/ec2.ts';

/**
 * `POST /api/v1/prices/refresh` (issue 19 point 4): the broker's Price List client (the real
 * @aws-sdk/client-pricing) against the EC2 emulator's price list. Prices in use are written as
 * `source: aws`; an admin's price is never looked up nor changed; a later start's shipped defaults
 * do not undo a fetched price; a failed lookup writes nothing.
 */
describe.each(DRIVERS)('price refresh from the AWS Price List API [%s]', (driver) => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let admin: Session;
  let providerId: string;

  const call = async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => b.app.inject({ method, url, headers: as(admin), payload: payload as never });
  const price = async (key: string) => (await call('GET', `/api/v1/prices/${key}`)).json() as { hourlyPrice: string; source: string };
  const lookups = () => emu.control.callCounts().byAction.GetProducts ?? 0;

  beforeAll(async () => {
    emu = await startTestEmulator();
    b = await createTestBroker(driver, { clock: new ManualClock('2026-12-01T09:00:00Z'), env: { STAGEDOOR_SECRET_KEY: 'ab'.repeat(32) } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const provider = await call('POST', '/api/v1/providers', { kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET } });
    providerId = provider.json().id;
    const subnetId = emu.control.defaultNetwork().subnets[0]!.subnetId;
    const pool = await call('POST', '/api/v1/pools', { name: 'edit', providerId, template: { imageId: DEMO_AMI_ID, instanceTypes: ['g5.xlarge', 'm5.large', 't3.medium'], subnetIds: [subnetId] }, minAvailable: 0 });
    expect(pool.statusCode, pool.body).toBe(201);
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  it('writes the region\'s on-demand prices as source "aws", keeps the admin\'s, and names what the list does not price', async () => {
    expect(await price('us-east-1/g5.xlarge')).toMatchObject({ hourlyPrice: '1.006000', source: 'default' });
    expect((await call('PUT', '/api/v1/prices/us-east-1/m5.large', { hourlyPrice: 0.5 })).statusCode).toBe(200);
    emu.control.setOnDemandPrice('us-east-1', 'g5.xlarge', 0.95);

    const before = lookups();
    const res = await call('POST', '/api/v1/prices/refresh', {});
    expect(res.statusCode).toBe(200);
    const [region] = res.json().regions;
    expect(region).toMatchObject({ region: 'us-east-1', provider: 'aws', keptAdmin: ['m5.large'] });
    const updated = new Map((region.updated as { instanceType: string; hourlyPrice: number; previous: unknown }[]).map((u) => [u.instanceType, u]));
    expect(updated.get('g5.xlarge')).toEqual({ instanceType: 'g5.xlarge', hourlyPrice: 0.95, previous: { hourlyPrice: 1.006, source: 'default' } });
    expect(updated.get('t3.medium')).toMatchObject({ hourlyPrice: 0.0416 });
    expect(updated.has('m5.large')).toBe(false);
    // The shipped table's us-east-1 types that the emulator's small list lacks are reported, not guessed.
    expect(region.missing).toContainEqual({ instanceType: 'p3.2xlarge', why: 'not in the price list for this region' });
    // One GetProducts per type looked up; the admin's type is not asked for.
    expect(lookups() - before).toBe(updated.size + region.missing.length);

    expect(await price('us-east-1/g5.xlarge')).toMatchObject({ hourlyPrice: '0.950000', source: 'aws' });
    expect(await price('us-east-1/m5.large')).toMatchObject({ hourlyPrice: '0.500000', source: 'admin' });
    expect((await call('GET', '/api/v1/prices?source=aws')).json().items.length).toBe(updated.size);
    // A restart installs the shipped defaults again: a fetched price stays.
    await b.services.prices.installDefaults();
    expect(await price('us-east-1/g5.xlarge')).toMatchObject({ hourlyPrice: '0.950000', source: 'aws' });
    const audit = await b.services.audit.list({ action: 'price.refresh' }, 1, 0);
    expect(audit.items[0]).toMatchObject({ outcome: 'success', details: expect.objectContaining({ operatingSystem: 'Linux', regions: [expect.objectContaining({ region: 'us-east-1', keptAdmin: ['m5.large'] })] }) });
  });

  it('takes named types and the Windows price when asked; a refused lookup writes nothing', async () => {
    const windows = await call('POST', '/api/v1/prices/refresh', { providerId, instanceTypes: ['g4dn.xlarge'], operatingSystem: 'Windows' });
    expect(windows.statusCode).toBe(200);
    // The first refresh took g4dn.xlarge's Linux price (a shipped default row in the region); now Windows'.
    expect(windows.json().regions[0].updated).toEqual([{ instanceType: 'g4dn.xlarge', hourlyPrice: 0.71, previous: { hourlyPrice: 0.526, source: 'aws' } }]);

    emu.control.setOnDemandPrice('us-east-1', 'g5.xlarge', 0.5);
    emu.control.refuseAccessKey(TEST_ACCESS_KEY);
    const refused = await call('POST', '/api/v1/prices/refresh', {});
    emu.control.allowAccessKey(TEST_ACCESS_KEY);
    expect(refused.statusCode).toBe(502);
    expect(refused.json().error.code).toBe('provider_auth');
    expect(await price('us-east-1/g5.xlarge')).toMatchObject({ hourlyPrice: '0.950000', source: 'aws' });
  });

  it.each<[string, unknown, number]>([
    ['an unknown provider', { providerId: '00000000-0000-4000-8000-000000000000' }, 404],
    ['a region without an aws-ec2 provider', { region: 'ap-south-1' }, 400],
    ['an operating system the table has no price for', { operatingSystem: 'macOS' }, 400],
    ['an instance type that is not one', { instanceTypes: ['g5 xlarge'] }, 400],
  ])('refuses %s with a clear 4xx', async (_name, body, status) => {
    const res = await call('POST', '/api/v1/prices/refresh', body);
    expect(res.statusCode).toBe(status);
  });
});
