import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/domain/clock.ts';
import { ConflictError, InvalidInputError, NotFoundError, UnauthenticatedError } from '../../src/domain/errors.ts';
import { systemActor, type Actor } from '../../src/domain/identity/actor.ts';
import { createTestBroker, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';

/**
 * Enrolment bound to an admin's record (ADR 0016): a token either makes a new gateway or re-enrols one
 * gateway, named by id; what clients dial comes from the record, never from the enrolling gateway.
 */
describe.each(DRIVERS)('gateway enrolment [%s]', (driver) => {
  const clock = new ManualClock('2026-03-02T09:00:00Z');
  let broker: TestBroker;
  let operator: Actor;
  const ports = { portRangeStart: 25000, portRangeEnd: 25009, version: 'test' };

  beforeAll(async () => {
    broker = await createTestBroker(driver, { clock });
    const user = await broker.services.users.create(systemActor, { username: 'olivia', password: 'password-of-olivia', role: 'operator', disabled: false, groupIds: [] });
    operator = { ...systemActor, userId: user.id, username: 'olivia', role: 'operator', via: 'session' };
  });
  afterAll(async () => broker?.close());

  async function gatewayAt(name: string, publicAddress: string) {
    const { token } = await broker.services.gateways.createEnrollment(systemActor, { cluster: 'studio', name, publicAddress, expiresInMinutes: 5 });
    return broker.services.gateways.enroll({ token, name, ...ports }, '192.0.2.9');
  }
  const audit = async (action: string, targetId: string) => (await broker.services.audit.list({ action, targetId }, 20, 0)).items;

  it('an operator cannot take over an existing gateway by enrolling under its name and picking its public address', async () => {
    const { gateway, credential } = await gatewayAt('edge-a', 'edge-a.example.test');
    // A token for a "new" gateway with the existing name is refused when it is made…
    await expect(broker.services.gateways.createEnrollment(operator, { cluster: 'studio', name: 'EDGE-A', publicAddress: 'evil.example.test', expiresInMinutes: 5 })).rejects.toThrow(ConflictError);
    // …and a nameless one cannot be used under that name either (the token stays unused).
    const { token } = await broker.services.gateways.createEnrollment(operator, { cluster: 'studio', publicAddress: 'evil.example.test', expiresInMinutes: 5 });
    await expect(broker.services.gateways.enroll({ token, name: 'edge-a', publicAddress: 'evil.example.test', ...ports }, '198.51.100.66')).rejects.toThrow(ConflictError);
    const denied = await broker.services.audit.list({ action: 'gateway.enroll', outcome: 'denied' }, 5, 0);
    expect(denied.items[0]).toMatchObject({ sourceAddress: '198.51.100.66' });
    expect(denied.items[0]!.reason).toContain('re-enrol it with a token from POST /api/v1/gateways/');
    const row = await broker.services.gateways.get(gateway.id);
    expect(row).toMatchObject({ publicAddress: 'edge-a.example.test', previousPublicAddress: null, credentialHash: gateway.credentialHash });
    expect((await broker.services.gateways.authenticateChannel(credential))?.id).toBe(gateway.id);
  });

  it("a new gateway's public address comes from the enrolment record, not from the enrolling gateway", async () => {
    const { token } = await broker.services.gateways.createEnrollment(operator, { cluster: 'studio', name: 'edge-n', publicAddress: 'edge-n.example.test', expiresInMinutes: 5 });
    const { gateway } = await broker.services.gateways.enroll({ token, name: 'edge-n', publicAddress: 'attacker.example.test', ...ports }, '192.0.2.9');
    expect(gateway.publicAddress).toBe('edge-n.example.test');
    const [enrolled] = await audit('gateway.enroll', gateway.id);
    expect(enrolled!.details).toMatchObject({ publicAddress: 'edge-n.example.test', proposedPublicAddress: 'attacker.example.test', reenrolled: false });
    const pending = await broker.services.gateways.listEnrollments(false, 50, 0);
    expect(pending.items.find((e) => e.gatewayId === gateway.id)).toMatchObject({ purpose: 'new', publicAddress: 'edge-n.example.test' });
  });

  it('a re-enrolment token is bound to one gateway id: it rotates that gateway and keeps its name, whatever name is presented', async () => {
    const a = await gatewayAt('edge-b', 'edge-b.example.test');
    const other = await gatewayAt('edge-c', 'edge-c.example.test');
    const { token, enrollment } = await broker.services.gateways.createReenrollment(operator, a.gateway.id, { expiresInMinutes: 5 });
    expect(enrollment).toMatchObject({ purpose: 'reenroll', gatewayId: a.gateway.id, name: 'edge-b', cluster: 'studio', publicAddress: 'edge-b.example.test' });
    const again = await broker.services.gateways.enroll({ token, name: 'edge-c', ...ports }, '192.0.2.9');
    expect(again.gateway).toMatchObject({ id: a.gateway.id, name: 'edge-b', publicAddress: 'edge-b.example.test' });
    expect(await broker.services.gateways.authenticateChannel(a.credential)).toBeNull();
    expect((await broker.services.gateways.authenticateChannel(other.credential))?.id).toBe(other.gateway.id); // untouched
    await expect(broker.services.gateways.enroll({ token, name: 'edge-b', ...ports }, null)).rejects.toThrow(UnauthenticatedError); // once
    await expect(broker.services.gateways.createReenrollment(operator, '00000000-0000-4000-8000-000000000000', { expiresInMinutes: 5 })).rejects.toThrow(NotFoundError);
  });

  it('a re-enrolment that moves the public address is audited when asked for and when it takes effect, and the gateway shows it', async () => {
    const { gateway } = await gatewayAt('edge-m', 'edge-m.example.test');
    const { token, enrollment } = await broker.services.gateways.createReenrollment(operator, gateway.id, { publicAddress: '203.0.113.40', expiresInMinutes: 5 });
    const [asked] = await audit('gateway.reenrollment_create', gateway.id);
    expect(asked).toMatchObject({ actorName: 'olivia', outcome: 'success' });
    expect(asked!.details).toMatchObject({ enrollmentId: enrollment.id, publicAddress: '203.0.113.40', addressChange: { from: 'edge-m.example.test', to: '203.0.113.40' } });
    expect((await broker.services.gateways.get(gateway.id)).publicAddress).toBe('edge-m.example.test'); // not before it is used
    clock.advance(60_000);
    await broker.services.gateways.enroll({ token, name: 'edge-m', publicAddress: 'ignored.example.test', ...ports }, '192.0.2.9');
    expect(await broker.services.gateways.get(gateway.id)).toMatchObject({ publicAddress: '203.0.113.40', previousPublicAddress: 'edge-m.example.test', publicAddressChangedAt: clock.now() });
    const [changed] = await audit('gateway.address_change', gateway.id);
    expect(changed!.details).toMatchObject({ from: 'edge-m.example.test', to: '203.0.113.40', enrollmentId: enrollment.id, authorisedBy: operator.userId });
  });

  it('a re-enrolment token whose gateway was deleted is refused, and never makes a new gateway', async () => {
    const { gateway } = await gatewayAt('edge-d', 'edge-d.example.test');
    const { token } = await broker.services.gateways.createReenrollment(operator, gateway.id, { expiresInMinutes: 5 });
    await broker.services.gateways.delete(systemActor, gateway.id);
    await expect(broker.services.gateways.enroll({ token, name: 'edge-d', ...ports }, null)).rejects.toThrow(/the gateway this token re-enrols has been deleted/);
    expect(await broker.services.gateways.findByName('edge-d')).toBeUndefined();
  });

  it('a public address that is not a host name or an IP address is refused, and nothing is written', async () => {
    const before = (await broker.services.gateways.listEnrollments(false, 500, 0)).total;
    for (const bad of ['https://gw.example.test', 'gw.example.test:443', 'gw example', '']) {
      await expect(broker.services.gateways.createEnrollment(operator, { cluster: 'studio', publicAddress: bad, expiresInMinutes: 5 })).rejects.toThrow(InvalidInputError);
    }
    expect((await broker.services.gateways.listEnrollments(false, 500, 0)).total).toBe(before);
  });
});
