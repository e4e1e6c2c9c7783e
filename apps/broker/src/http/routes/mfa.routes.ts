import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, MfaStatus, RecoveryCodes, TotpCode, TotpEnrollment } from '@stagedoor/contract';
import { ConflictError, InvalidInputError } from '../../domain/errors.ts';
import type { Services } from '../../services.ts';
import { isoOrNull } from '../dto.ts';
import { signedInActor } from '../request-context.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody };

/** Self-service TOTP for the signed-in user: enrol, confirm, recovery codes, remove (proving a code). */
export function mfaRoutes(app: FastifyInstance, deps: { services: Services; loginRatePerMinute: number }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { totp, authServers, signIn } = deps.services;
  const tags = ['mfa'];
  // Routes that check a code: per node and per user (a stolen session may come from many addresses), as sign-in is.
  const codeRateLimit = { max: deps.loginRatePerMinute, timeWindow: 60_000, keyGenerator: (request: FastifyRequest) => request.auth?.user.id ?? request.ip };

  r.get('/api/v1/me/mfa', { config: { access: 'user' }, schema: { tags, summary: 'My second factors', response: { 200: MfaStatus, ...errors } } }, async (request) => {
    const s = await totp.status(signedInActor(request).userId);
    return { totp: { enrolled: s.enrolled, confirmedAt: isoOrNull(s.confirmedAt), recoveryCodesLeft: s.recoveryCodesLeft } };
  });

  r.post(
    '/api/v1/me/mfa/totp',
    { config: { access: 'user', sessionOnly: true }, schema: { tags, summary: 'Start TOTP enrolment: a secret, its otpauth:// URI and QR code; confirm with a first code', response: { 201: TotpEnrollment, ...errors } } },
    async (request, reply) => {
      const actor = signedInActor(request);
      const server = (await authServers.rows()).find((s) => s.kind === 'totp' && s.enabled);
      if (!server) throw new ConflictError('TOTP is not enabled here: an admin must add the built-in totp auth server first');
      return reply.code(201).send(await totp.begin({ id: actor.userId, username: actor.username }, (server.config as { issuer?: string }).issuer ?? 'Stagedoor'));
    },
  );

  r.post(
    '/api/v1/me/mfa/totp/confirm',
    { config: { access: 'user', sessionOnly: true }, schema: { tags, summary: 'Confirm TOTP enrolment with a first code; answers the recovery codes, once', body: TotpCode, response: { 200: RecoveryCodes, ...errors } } },
    async (request) => {
      const actor = signedInActor(request);
      const codes = await totp.confirm(actor, actor.userId, request.body.code);
      if (!codes) throw new InvalidInputError('that code does not match the new authenticator: check the device clock and try the next code', [{ path: 'body.code', message: 'is wrong' }]);
      return { recoveryCodes: codes };
    },
  );

  r.post(
    '/api/v1/me/mfa/recovery-codes',
    {
      config: { access: 'user', sessionOnly: true, rateLimit: codeRateLimit },
      schema: { tags, summary: 'New recovery codes (the old ones stop working); needs a current code; wrong codes count towards the lockout', body: TotpCode, response: { 200: RecoveryCodes, ...errors } },
    },
    async (request) => {
      const actor = signedInActor(request);
      await signIn.proveTotp(actor, request.body.code);
      return { recoveryCodes: await totp.regenerateRecoveryCodes(actor, actor.userId) };
    },
  );

  r.delete(
    '/api/v1/me/mfa/totp',
    {
      config: { access: 'user', sessionOnly: true, rateLimit: codeRateLimit },
      schema: { tags, summary: 'Remove my TOTP; needs a current code or a recovery code; wrong codes count towards the lockout', body: TotpCode, response: { 204: z.null(), ...errors } },
    },
    async (request, reply) => {
      const actor = signedInActor(request);
      await signIn.proveTotp(actor, request.body.code);
      await totp.remove(actor, actor.userId);
      return reply.code(204).send(null);
    },
  );
}
