import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import { as, type Session } from '../../../../test/support/broker.ts';

/** STAGEDOOR_SECRET_KEY for test brokers that store directory secrets. */
export const SECRET_KEY = 'a1'.repeat(32);

export function loginRaw(app: FastifyInstance, username: string, password: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { username, password }, headers });
}

export function mfaRaw(app: FastifyInstance, loginToken: string, code: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return app.inject({ method: 'POST', url: '/api/v1/auth/login/mfa', payload: { loginToken, code }, headers });
}

/** Create through the API and return the body, failing the test with the answer when it is not 201. */
export async function create(app: FastifyInstance, admin: Session, url: string, payload: object): Promise<{ id: string } & Record<string, unknown>> {
  const res = await app.inject({ method: 'POST', url, headers: as(admin), payload });
  expect(res.statusCode, `POST ${url}: ${res.body}`).toBe(201);
  return res.json();
}

export function hasSessionCookie(res: LightMyRequestResponse): boolean {
  return res.cookies.some((c) => c.name === 'stagedoor_session' && c.value !== '');
}

export function groupNames(res: LightMyRequestResponse): string[] {
  return (res.json().user.groups as { name: string }[]).map((g) => g.name).sort();
}
