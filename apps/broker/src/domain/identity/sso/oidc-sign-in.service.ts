import { createHash } from 'node:crypto';
import type { OidcSettings } from '@stagedoor/contract';
import type { AuthServerRow } from '../../auth-servers/auth-servers.repository.ts';
import type { AuthServersService } from '../../auth-servers/auth-servers.service.ts';
import type { Clock } from '../../clock.ts';
import { InvalidInputError, NotFoundError, UnavailableError } from '../../errors.ts';
import { OidcCheckFailed, type OidcClient } from '../../../providers/oidc/oidc-client.ts';
import type { LoginContext } from '../auth.service.ts';
import type { SignInResult } from '../sign-in.service.ts';
import { newToken, safeEqual } from '../tokens.ts';
import type { SsoIdentity, SsoSignIn } from './complete-sign-in.ts';
import type { SsoStatesRepository } from './sso-states.repository.ts';

/** Time to sign in at the IdP (MFA prompts included) before the state is void. */
const LOGIN_TTL_MS = 10 * 60_000;
/** Time between the browser landing on the CLI's loopback listener and the CLI's exchange. */
const HANDOFF_TTL_MS = 60_000;

/** `stagedoor login --sso`: the CLI's loopback port and the S256 of a verifier only the CLI holds. */
export interface CliRequest {
  port: number;
  challenge: string;
}

export type OidcCallbackOutcome = { kind: 'browser'; result: SignInResult; returnTo: string } | { kind: 'cli'; redirect: string };

/**
 * OpenID Connect sign-in: authorization code + PKCE + state + nonce. The state row (nonce, PKCE
 * verifier, where to go afterwards) lives in PostgreSQL, so the callback may land on any broker node;
 * it is spent by the first callback that names it. The checked claims become an `SsoIdentity` for
 * `SsoSignIn.complete`, which every SSO kind shares.
 */
export class OidcSignInService {
  constructor(private readonly deps: { authServers: AuthServersService; states: SsoStatesRepository; sso: SsoSignIn; client: OidcClient; clock: Clock; publicUrl: string | null }) {}

  redirectUri(server: AuthServerRow): string {
    return `${this.#publicUrl()}/api/v1/auth/oidc/${encodeURIComponent(server.name)}/callback`;
  }

  async start(name: string, opts: { returnTo?: string; cli?: CliRequest }): Promise<string> {
    const server = await this.#server(name);
    const settings = server.config as OidcSettings;
    const state = newToken();
    const auth = await this.deps.client.authorize(server.id, settings, this.deps.authServers.clientSecretFor(server), this.redirectUri(server), state);
    const now = this.deps.clock.now();
    await this.deps.states.put(state, {
      purpose: 'oidc-login',
      authServerId: server.id,
      payload: { nonce: auth.nonce, codeVerifier: auth.codeVerifier, returnTo: safeReturnTo(opts.returnTo), ...(opts.cli ? { cli: opts.cli } : {}) },
      now,
      expiresAt: new Date(now.getTime() + LOGIN_TTL_MS),
    });
    return auth.url;
  }

  /** The IdP sent the browser back: `query` is the callback's query string as received. */
  async callback(name: string, query: URLSearchParams, ctx: LoginContext): Promise<OidcCallbackOutcome> {
    const server = await this.#server(name);
    const state = query.get('state');
    const taken = state ? await this.deps.states.take(state, 'oidc-login', this.deps.clock.now()) : null;
    // Unknown, expired, already used, or started for another server: all one answer, nothing else is tried.
    if (!taken || taken.authServerId !== server.id) throw await this.deps.sso.refuse(server, ctx, 'unknown, expired or already used state', { check: 'state' });
    const p = taken.payload as { nonce: string; codeVerifier: string; returnTo: string; cli?: CliRequest };
    if (query.get('error')) throw await this.deps.sso.refuse(server, ctx, `the IdP answered ${query.get('error')}${query.get('error_description') ? `: ${query.get('error_description')}` : ''}`, { check: 'idp-error' });
    const settings = server.config as OidcSettings;
    const callbackUrl = new URL(this.redirectUri(server));
    callbackUrl.search = query.toString();
    let result;
    try {
      result = await this.deps.client.exchange(server.id, settings, this.deps.authServers.clientSecretFor(server), callbackUrl, { state: state!, nonce: p.nonce, codeVerifier: p.codeVerifier });
    } catch (err) {
      if (err instanceof OidcCheckFailed) throw await this.deps.sso.refuse(server, ctx, `ID token or code refused: ${err.message}`, { check: 'token' });
      throw err;
    }
    const identity = await this.#identity(server, settings, result.claims, ctx);
    if (p.cli) {
      // The CLI gets a one-time code on its loopback port; only the holder of the verifier can spend it.
      const code = newToken();
      const now = this.deps.clock.now();
      await this.deps.states.put(code, { purpose: 'cli-handoff', authServerId: server.id, payload: { identity, challenge: p.cli.challenge }, now, expiresAt: new Date(now.getTime() + HANDOFF_TTL_MS) });
      return { kind: 'cli', redirect: `http://127.0.0.1:${p.cli.port}/callback?code=${encodeURIComponent(code)}` };
    }
    return { kind: 'browser', result: await this.deps.sso.complete(identity, ctx), returnTo: p.returnTo };
  }

  /** `stagedoor login --sso` trades the loopback code and its own verifier for a session. */
  async cliExchange(code: string, verifier: string, ctx: LoginContext): Promise<SignInResult> {
    const taken = await this.deps.states.take(code, 'cli-handoff', this.deps.clock.now());
    const server = taken ? ((await this.deps.authServers.rows()).find((s) => s.id === taken.authServerId) ?? null) : null;
    if (!taken) throw await this.deps.sso.refuse(server, ctx, 'unknown, expired or already used CLI code', { check: 'cli-code' });
    const p = taken.payload as { identity: SsoIdentity; challenge: string };
    if (!safeEqual(createHash('sha256').update(verifier).digest('base64url'), p.challenge)) {
      throw await this.deps.sso.refuse(server, ctx, 'the CLI verifier does not match the sign-in it started', { check: 'cli-verifier', username: p.identity.username });
    }
    return this.deps.sso.complete(p.identity, ctx);
  }

  /** Where to send the browser after Stagedoor's logout, when the user's server is an IdP that publishes end_session_endpoint. */
  async endSessionUrl(authServerId: string | null): Promise<string | null> {
    if (!authServerId || !this.deps.publicUrl) return null;
    const server = (await this.deps.authServers.rows()).find((s) => s.id === authServerId);
    if (!server || server.kind !== 'oidc' || !server.enabled) return null;
    try {
      return await this.deps.client.endSessionUrl(server.id, server.config as OidcSettings, this.deps.authServers.clientSecretFor(server), undefined, `${this.deps.publicUrl}/`);
    } catch (err) {
      if (err instanceof UnavailableError) return null;
      throw err;
    }
  }

  async #identity(server: AuthServerRow, s: OidcSettings, claims: Record<string, unknown>, ctx: LoginContext): Promise<SsoIdentity> {
    const str = (v: unknown) => (typeof v === 'string' && v.trim() ? v.trim() : null);
    const username = str(claims[s.usernameClaim]);
    const subject = String(claims.sub);
    if (!username) throw await this.deps.sso.refuse(server, ctx, `the ID token has no "${s.usernameClaim}" claim (config.usernameClaim)`, { check: 'claims', subject });
    const amr = Array.isArray(claims.amr) ? claims.amr.map(String) : [];
    const acr = str(claims.acr);
    const mfaDone = (s.acrValues.length > 0 && acr !== null && s.acrValues.includes(acr)) || s.amrValues.some((v) => amr.includes(v));
    if (s.requireIdpMfa && !mfaDone) {
      throw await this.deps.sso.refuse(server, ctx, 'the IdP did not prove multi-factor authentication (acr/amr) and this server requires it', { check: 'mfa', username, acr, amr }, null, 'this sign-in needs multi-factor authentication at your identity provider: sign in there with your second factor and try again');
    }
    const raw = claims[s.groupsClaim];
    let groups: string[] | null;
    if (Array.isArray(raw)) groups = raw.map(String);
    else if (typeof raw === 'string') groups = [raw];
    else if (isOverage(claims, s.groupsClaim)) {
      // Entra ID left the groups out (too many): refusing beats guessing. See docs/decisions/0026.
      const view = await this.deps.authServers.get(server.id);
      if (view.mappings.length || (server.config as { roleMappings?: unknown[] }).roleMappings?.length) {
        throw await this.deps.sso.refuse(server, ctx, 'the ID token has no groups (Entra ID group overage) and this server maps groups', { check: 'groups-overage', username }, null, 'your identity provider sent too many groups to fit in the sign-in token: ask your administrator to limit the groups claim to the groups assigned to Stagedoor');
      }
      groups = null;
    } else groups = [];
    return { authServerId: server.id, subject, username, displayName: str(claims[s.displayNameClaim]), email: str(claims[s.emailClaim]), groups, mfaDone, details: { ...(acr ? { acr } : {}), ...(amr.length ? { amr } : {}) } };
  }

  async #server(name: string): Promise<AuthServerRow> {
    const server = (await this.deps.authServers.rows()).find((s) => s.kind === 'oidc' && s.name.toLowerCase() === name.toLowerCase());
    if (!server || !server.enabled) throw new NotFoundError('OIDC sign-in', name);
    return server;
  }

  #publicUrl(): string {
    if (!this.deps.publicUrl) throw new InvalidInputError('single sign-on needs STAGEDOOR_PUBLIC_URL (the address browsers use to reach Stagedoor): redirect URIs are built from it', [{ path: 'STAGEDOOR_PUBLIC_URL', message: 'is not set' }]);
    return this.deps.publicUrl;
  }
}

/** Entra ID's overage marker: `_claim_names.groups` points at a Graph call instead of listing the groups. */
function isOverage(claims: Record<string, unknown>, groupsClaim: string): boolean {
  const names = claims._claim_names as Record<string, unknown> | undefined;
  return !!names && typeof names === 'object' && (groupsClaim in names || 'groups' in names);
}

/** Only a path on this site: `//evil.example` and absolute URLs would make the callback an open redirect. */
function safeReturnTo(v: string | undefined): string {
  return v && /^\/(?![/\\])[^\s]*$/.test(v) ? v : '/';
}
