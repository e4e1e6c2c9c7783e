import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, LoginAnswer, SsoServerList } from '@stagedoor/contract';
import type { Services } from '../../services.ts';
import { loginContext, signInAnswer } from './auth.routes.ts';

const errors = { 400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody, 409: ErrorBody, 429: ErrorBody, 503: ErrorBody };
const NameParams = z.object({ name: z.string().min(1).max(128) });
const StartQuery = z.object({
  returnTo: z.string().max(2048).optional().describe('a path on this site to land on after sign-in'),
  cliPort: z.coerce.number().int().min(1024).max(65535).optional().describe('stagedoor login --sso: the loopback port the CLI listens on'),
  cliChallenge: z
    .string()
    .regex(/^[A-Za-z0-9_-]{43}$/, 'must be the base64url SHA-256 of the CLI verifier')
    .optional()
    .describe('stagedoor login --sso: S256 of a verifier only the CLI holds'),
});
const CliExchange = z.strictObject({ code: z.string().min(1).max(256), verifier: z.string().min(43).max(128) });

/**
 * Single sign-on: the public list of SSO buttons, the OIDC redirect and callback, and the CLI's
 * hand-off. Redirect URIs come from STAGEDOOR_PUBLIC_URL, never the Host header.
 */
export function ssoRoutes(app: FastifyInstance, deps: { services: Services; loginRatePerMinute: number; secureCookie: 'always' | 'when-https' }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { oidc, authServers } = deps.services;
  const limited = { access: 'public' as const, rateLimit: { max: deps.loginRatePerMinute, timeWindow: 60_000 } };

  r.get(
    '/api/v1/auth/sso',
    { config: { access: 'public' }, schema: { tags: ['auth'], summary: 'The enabled single sign-on servers, for the login page buttons (name and label only)', response: { 200: SsoServerList } } },
    async () => {
      const rows = (await authServers.rows()).filter((s) => s.enabled && (s.kind === 'oidc' || s.kind === 'saml'));
      return {
        items: rows.map((s) => ({
          name: s.name,
          kind: s.kind as 'oidc' | 'saml',
          label: (s.config as { label?: string }).label ?? `Sign in with ${s.name}`,
          startUrl: `/api/v1/auth/${s.kind}/${encodeURIComponent(s.name)}/start`,
        })),
      };
    },
  );

  r.get(
    '/api/v1/auth/oidc/:name/start',
    { config: { ...limited, htmlErrors: true }, schema: { tags: ['auth'], summary: 'Start an OpenID Connect sign-in: redirects to the identity provider', params: NameParams, querystring: StartQuery, response: { 302: z.null(), ...errors } } },
    async (request, reply) => {
      const { returnTo, cliPort, cliChallenge } = request.query;
      if ((cliPort === undefined) !== (cliChallenge === undefined)) {
        return reply.code(400).send({ error: { code: 'invalid_input', message: 'cliPort and cliChallenge go together (stagedoor login --sso sends both)', requestId: String(request.id) } });
      }
      const url = await oidc.start(request.params.name, { returnTo, cli: cliPort && cliChallenge ? { port: cliPort, challenge: cliChallenge } : undefined });
      return reply.redirect(url, 302);
    },
  );

  r.get(
    '/api/v1/auth/oidc/:name/callback',
    { config: { ...limited, htmlErrors: true }, schema: { tags: ['auth'], summary: 'Where the identity provider sends the browser back (redirect URI)', params: NameParams, response: { 302: z.null(), ...errors } } },
    async (request, reply) => {
      const query = new URLSearchParams(request.raw.url!.split('?')[1] ?? '');
      const out = await oidc.callback(request.params.name, query, loginContext(request));
      if (out.kind === 'cli') return reply.redirect(out.redirect, 302);
      const { result, returnTo } = out;
      if (result.kind === 'mfa') {
        // The second factor is asked on the login page; the login token travels in the fragment, which no server log sees.
        const f = new URLSearchParams({ loginToken: result.loginToken, factor: result.factor, expiresAt: result.expiresAt.toISOString(), returnTo, ...(result.prompt ? { prompt: result.prompt } : {}) });
        return reply.redirect(`/#/sso-mfa?${f.toString()}`, 302);
      }
      signInAnswer(request, reply, result, deps.secureCookie);
      return reply.redirect(returnTo, 302);
    },
  );

  r.post(
    '/api/v1/auth/sso/cli-exchange',
    { config: limited, schema: { tags: ['auth'], summary: 'stagedoor login --sso: trade the loopback code and the CLI verifier for a session', body: CliExchange, response: { 200: LoginAnswer, ...errors } } },
    async (request, reply) => signInAnswer(request, reply, await oidc.cliExchange(request.body.code, request.body.verifier, loginContext(request)), deps.secureCookie),
  );

  r.get(
    '/api/v1/auth/sso/end-session',
    {
      config: { access: 'user' },
      schema: { tags: ['auth'], summary: "The identity provider's end-session URL for the signed-in user, to offer after logout (null when none)", response: { 200: z.object({ url: z.string().nullable() }), ...errors } },
    },
    async (request) => ({ url: await oidc.endSessionUrl(request.auth!.user.authServerId) }),
  );
}
