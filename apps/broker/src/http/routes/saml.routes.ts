import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, IdpMetadata, ImportIdpMetadata } from '@stagedoor/contract';
import type { Services } from '../../services.ts';
import { loginContext, signInAnswer } from './auth.routes.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody, 415: ErrorBody, 429: ErrorBody, 502: ErrorBody, 503: ErrorBody };
const NameParams = z.object({ name: z.string().min(1).max(128) });
const StartQuery = z.object({ returnTo: z.string().max(2048).optional().describe('a path on this site to land on after sign-in') });
const AcsBody = z.object({ SAMLResponse: z.string().min(1).max(1_000_000), RelayState: z.string().max(1024).optional() });
/** A signed Response with a few hundred groups stays well under this; the app's JSON limit does not apply to the form. */
const ACS_BODY_LIMIT = 1024 * 1024;
/** Ties an AuthnRequest to the browser that started it (ADR 0027): one sign-in at a time per browser. */
const BINDING_COOKIE = 'stagedoor_saml';

/**
 * SAML 2.0 SP endpoints (ADR 0027): the start of a sign-in (redirect to the IdP), the Assertion
 * Consumer Service the IdP's browser POST lands on, the SP metadata, and the IdP metadata import.
 */
export function samlRoutes(app: FastifyInstance, deps: { services: Services; loginRatePerMinute: number; secureCookie: 'always' | 'when-https' }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { saml } = deps.services;
  const limited = { access: 'public' as const, rateLimit: { max: deps.loginRatePerMinute, timeWindow: 60_000 } };

  r.get(
    '/api/v1/auth/saml/:name/start',
    { config: { ...limited, htmlErrors: true }, schema: { tags: ['auth'], summary: 'Start a SAML sign-in: redirects to the identity provider with an AuthnRequest', params: NameParams, querystring: StartQuery, response: { 302: z.null(), ...errors } } },
    async (request, reply) => {
      const { url, binding } = await saml.start(request.params.name, { returnTo: request.query.returnTo });
      // SameSite=None: the only kind of cookie a browser sends with the IdP's cross-site POST to the ACS.
      if (binding) reply.setCookie(BINDING_COOKIE, binding, { path: '/api/v1/auth/saml/', httpOnly: true, secure: true, sameSite: 'none', maxAge: 600 });
      return reply.redirect(url, 302);
    },
  );

  r.get(
    '/api/v1/auth-servers/:name/saml/metadata',
    {
      config: { access: 'public' },
      schema: { tags: ['auth-servers'], summary: 'The SP metadata of a saml auth server, for the identity provider (entity id, ACS URL, request-signing certificate)', params: NameParams, response: { 200: z.string(), ...errors } },
    },
    async (request, reply) => reply.type('application/samlmetadata+xml; charset=utf-8').send(await saml.metadata(request.params.name)),
  );

  r.post(
    '/api/v1/auth-servers/saml/idp-metadata',
    {
      config: { access: 'auth-servers:write' },
      schema: { tags: ['auth-servers'], summary: "Read an IdP's SAML metadata (XML, or a URL the broker fetches) into idpEntityId, idpSsoUrl and idpCertificates", body: ImportIdpMetadata, response: { 200: IdpMetadata, ...errors } },
    },
    async (request) => saml.importIdpMetadata(request.body),
  );

  // The ACS is a cross-site form POST from the IdP's page: the only route that takes a form. The
  // parser lives in this child context so every other route still refuses forms (app.ts: JSON only,
  // against cross-site form posts). It needs no CSRF token: it is public, and what authenticates it
  // is the signed assertion answering a request this broker made.
  void app.register(async (child) => {
    child.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: ACS_BODY_LIMIT }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    child.withTypeProvider<ZodTypeProvider>().post(
      '/api/v1/auth/saml/:name/acs',
      {
        bodyLimit: ACS_BODY_LIMIT,
        // A browser landing here after a refusal gets a readable page, not JSON.
        config: { ...limited, htmlErrors: true },
        schema: { tags: ['auth'], summary: "Assertion Consumer Service: the IdP's HTTP-POST binding lands here; sets the session cookie and redirects", params: NameParams, body: AcsBody, response: { 303: z.null(), ...errors } },
      },
      async (request, reply) => {
        const { result, returnTo } = await saml.acs(request.params.name, request.body.SAMLResponse, loginContext(request), request.cookies?.[BINDING_COOKIE]);
        reply.clearCookie(BINDING_COOKIE, { path: '/api/v1/auth/saml/', secure: true, sameSite: 'none' });
        if (result.kind === 'mfa') {
          // Same hand-over as OIDC: the login page asks for the second factor; the token travels in the fragment.
          const f = new URLSearchParams({ loginToken: result.loginToken, factor: result.factor, expiresAt: result.expiresAt.toISOString(), returnTo, ...(result.prompt ? { prompt: result.prompt } : {}) });
          return reply.redirect(`/login#sso-mfa&${f.toString()}`, 303);
        }
        signInAnswer(request, reply, result, deps.secureCookie);
        // 303: the browser follows with a GET, a top-level same-site navigation that carries the Lax cookie just set.
        return reply.redirect(returnTo, 303);
      },
    );
  });
}
