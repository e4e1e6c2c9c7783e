import * as client from 'openid-client';
import type { OidcSettings } from '@stagedoor/contract';
import { UnavailableError } from '../../domain/errors.ts';

/** How long a discovery document (and the JWKS openid-client keeps with it) is reused before it is read again. */
const DISCOVERY_TTL_MS = 10 * 60_000;
const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/i;

export interface OidcAuthorization {
  url: string;
  /** Kept server-side (sso_states) until the callback: the PKCE verifier and the nonce never reach the browser. */
  codeVerifier: string;
  nonce: string;
}

/** The checked ID token's claims (plus userinfo's, when asked for) and the raw ID token for the end-session hint. */
export interface OidcResult {
  claims: Record<string, unknown>;
  idToken: string | undefined;
}

/** A token the IdP or openid-client refused: the message is safe to audit (no token contents). */
export class OidcCheckFailed extends Error {}

/**
 * The seam to an OpenID Provider, on `openid-client` (a certified relying party): discovery, the
 * authorization URL with PKCE (S256), state and nonce, and the code exchange, in which openid-client
 * checks the ID token's signature against the issuer's JWKS (fetched again for an unknown key id:
 * key rotation), issuer, audience, azp, expiry, iat and nonce. Nothing here skips a check.
 */
export class OidcClient {
  #cache = new Map<string, { config: client.Configuration; at: number }>();

  async #config(key: string, s: OidcSettings, secret: string): Promise<client.Configuration> {
    const cacheKey = `${key}\n${s.issuer}\n${s.clientId}\n${secret}`;
    const hit = this.#cache.get(cacheKey);
    if (hit && Date.now() - hit.at < DISCOVERY_TTL_MS) return hit.config;
    const issuer = new URL(s.issuer);
    // Plain http only for an IdP on this machine (tests, a local Keycloak); the contract refuses it otherwise.
    const insecure = issuer.protocol === 'http:' && LOOPBACK_HOST.test(issuer.hostname);
    try {
      // enableNonRepudiationChecks: the ID token's signature is checked against the JWKS even though it
      // came straight from the token endpoint — TLS alone would not catch a token altered by a proxy.
      const execute = insecure ? [client.allowInsecureRequests, client.enableNonRepudiationChecks] : [client.enableNonRepudiationChecks];
      const config = await client.discovery(issuer, s.clientId, secret, undefined, { execute, timeout: 10 });
      this.#cache.set(cacheKey, { config, at: Date.now() });
      return config;
    } catch (err) {
      throw new UnavailableError(`cannot read the OpenID configuration of ${s.issuer}: ${(err as Error).message}`, { issuer: s.issuer });
    }
  }

  async authorize(key: string, s: OidcSettings, secret: string, redirectUri: string, state: string): Promise<OidcAuthorization> {
    const config = await this.#config(key, s, secret);
    const codeVerifier = client.randomPKCECodeVerifier();
    const nonce = client.randomNonce();
    const params: Record<string, string> = {
      redirect_uri: redirectUri,
      scope: s.scopes.join(' '),
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    };
    if (s.acrValues.length) params.acr_values = s.acrValues.join(' ');
    return { url: client.buildAuthorizationUrl(config, params).href, codeVerifier, nonce };
  }

  /** `callbackUrl`: our redirect URI with the query the IdP sent (code, state, iss …). */
  async exchange(key: string, s: OidcSettings, secret: string, callbackUrl: URL, expected: { state: string; nonce: string; codeVerifier: string }): Promise<OidcResult> {
    const config = await this.#config(key, s, secret);
    let tokens;
    try {
      tokens = await client.authorizationCodeGrant(config, callbackUrl, { pkceCodeVerifier: expected.codeVerifier, expectedState: expected.state, expectedNonce: expected.nonce, idTokenExpected: true });
    } catch (err) {
      throw new OidcCheckFailed(describe(err));
    }
    const claims = { ...(tokens.claims() as Record<string, unknown>) };
    if (s.userinfo && tokens.access_token) {
      try {
        const info = await client.fetchUserInfo(config, tokens.access_token, String(claims.sub));
        // The ID token's claims were checked; userinfo only fills in what it lacks (sub must match: openid-client checks).
        for (const [k, v] of Object.entries(info)) if (!(k in claims)) claims[k] = v;
      } catch (err) {
        throw new OidcCheckFailed(`userinfo: ${describe(err)}`);
      }
    }
    return { claims, idToken: tokens.id_token };
  }

  /** The IdP's end_session_endpoint URL for this sign-in, or null when the IdP publishes none. */
  async endSessionUrl(key: string, s: OidcSettings, secret: string, idToken: string | undefined, postLogoutRedirectUri: string): Promise<string | null> {
    const config = await this.#config(key, s, secret);
    if (!config.serverMetadata().end_session_endpoint) return null;
    const params: Record<string, string> = { post_logout_redirect_uri: postLogoutRedirectUri, client_id: s.clientId };
    if (idToken) params.id_token_hint = idToken;
    return client.buildEndSessionUrl(config, params).href;
  }
}

/** What was wrong, for the audit row: the library's code and message, and the claim that failed (no token contents). */
function describe(err: unknown): string {
  const e = err as { message?: string; code?: string; error?: string; error_description?: string; cause?: { claim?: unknown; message?: string; code?: string } };
  if (e.error) return `the IdP answered ${e.error}${e.error_description ? `: ${e.error_description}` : ''}`;
  const claim = typeof e.cause?.claim === 'string' ? ` (claim ${e.cause.claim})` : '';
  const cause = !claim && e.cause?.message ? ` (${e.cause.code ? `${e.cause.code}: ` : ''}${e.cause.message})` : '';
  return `${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}${claim}${cause}`;
}
