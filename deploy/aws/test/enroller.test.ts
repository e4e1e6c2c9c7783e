import { readFileSync } from 'node:fs';
import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ENROLLER_HANDLER } from '../src/enroller-handler.ts';

// The enroller runs only in Lambda (ADR 0025); what can be checked here without AWS is that its
// inline code parses, fits CloudFormation's ZipFile limit, and calls broker routes that exist.
describe('gateway enroller code', () => {
  it('parses as a script and fits the inline code limit', () => {
    expect(() => new Script(ENROLLER_HANDLER)).not.toThrow();
    expect(ENROLLER_HANDLER.length).toBeLessThan(4096);
  });

  it('calls the broker routes it needs, with the body fields the enrolment API takes', () => {
    const auth = readFileSync(new URL('../../../apps/broker/src/http/routes/auth.routes.ts', import.meta.url), 'utf8');
    const gateways = readFileSync(new URL('../../../apps/broker/src/http/routes/gateways.routes.ts', import.meta.url), 'utf8');
    const contract = readFileSync(new URL('../../../packages/contract/src/gateway.ts', import.meta.url), 'utf8');
    for (const [route, file] of [['/api/v1/auth/login', auth], ['/api/v1/auth/logout', auth], ['/api/v1/gateways/enrollments', gateways]] as const) {
      expect(ENROLLER_HANDLER).toContain(`'${route}'`);
      expect(file).toContain(`'${route}'`);
    }
    for (const field of ['cluster', 'name', 'publicAddress', 'expiresInMinutes']) expect(contract).toMatch(new RegExp(`\\b${field}:`));
    expect(ENROLLER_HANDLER).toContain("'x-csrf-token'");
  });
});
