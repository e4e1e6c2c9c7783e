import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Script } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, createTestBroker, login, as, type TestBroker } from '../../../test/support/broker.ts';
import { ENROLLER_HANDLER } from '../src/enroller-handler.ts';

type Enrol = (instanceId: string, password: string) => Promise<string>;

/** The Lambda's inline module, loaded as Lambda would (CommonJS), with the environment the stack sets. */
function loadEnroller(env: Record<string, string>): { enrol: Enrol } {
  const module = { exports: {} as { enrol: Enrol } };
  const wrapper = new Script(`(function (require, module, exports, process) {${ENROLLER_HANDLER}\n})`).runInThisContext() as (...args: unknown[]) => void;
  // The AWS SDK is required only inside the handler (SSM, Secrets Manager), which needs AWS and is not run here.
  const requireNothing = (name: string) => {
    throw new Error(`not available in this test: ${name}`);
  };
  wrapper(requireNothing, module, module.exports, { env });
  return module.exports;
}

// The part of the enroller that talks to the broker, against a real broker over HTTP (ADR 0025);
// the SSM and Secrets Manager calls around it need AWS and are not exercised (docs/deploy-aws.md).
describe('gateway enroller', () => {
  let broker: TestBroker;
  let enrol: Enrol;
  beforeAll(async () => {
    broker = await createTestBroker('pglite');
    await broker.app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = broker.app.server.address() as AddressInfo;
    enrol = loadEnroller({ BROKER_URL: `http://127.0.0.1:${port}`, CLUSTER: 'aws', GATEWAY_ADDRESS: 'gw.studio.example' }).enrol;
  });
  afterAll(async () => broker?.close());

  it('fits the inline code limit', () => {
    expect(ENROLLER_HANDLER.length).toBeLessThan(4096);
  });

  it('makes a one-time token for a new gateway named after the instance, at the stack\'s address', async () => {
    const token = await enrol('i-0123456789abcdef0', ADMIN_PASSWORD);
    expect(token).toMatch(/^sde_/);
    const enrolled = await broker.app.inject({ method: 'POST', url: '/api/v1/gateways/enroll', payload: { token, name: 'whatever-the-gateway-says', portRangeStart: 20000, portRangeEnd: 20999, version: '0.1.0' } });
    expect(enrolled.statusCode).toBe(201);
    expect(enrolled.json()).toMatchObject({ name: 'i-0123456789abcdef0', cluster: 'aws', publicAddress: 'gw.studio.example' });
    // Audited as the admin's act, and it signed out: the enroller leaves no session behind.
    const admin = await login(broker.app, 'admin', ADMIN_PASSWORD);
    const audit = async (action: string) => (await broker.app.inject({ url: `/api/v1/audit?action=${action}`, headers: as(admin) })).json().items as Array<{ details: Record<string, unknown> }>;
    expect((await audit('gateway.enrollment_create')).map((a) => a.details)).toEqual([expect.objectContaining({ name: 'i-0123456789abcdef0', publicAddress: 'gw.studio.example' })]);
    expect(await audit('auth.logout')).toHaveLength(1);
  });

  it('fails at once, not retried, on a refusal: a wrong password, a name already taken', async () => {
    await expect(enrol('i-0aaaaaaaaaaaaaaaa', 'not the password')).rejects.toMatchObject({ status: 401 });
    await expect(enrol('i-0123456789abcdef0', ADMIN_PASSWORD)).rejects.toMatchObject({ status: 409 });
  });

  it('calls only routes the broker has', () => {
    const routes = readFileSync(new URL('../../../apps/broker/src/http/routes/auth.routes.ts', import.meta.url), 'utf8') + readFileSync(new URL('../../../apps/broker/src/http/routes/gateways.routes.ts', import.meta.url), 'utf8');
    for (const route of ENROLLER_HANDLER.match(/'\/api\/v1\/[^']+'/g) ?? []) expect(routes).toContain(route);
  });
});
