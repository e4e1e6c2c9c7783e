import type { CacheProvider, Profile } from '@node-saml/node-saml';
import type { IdpMetadata, SamlSettings } from '@stagedoor/contract';
import type { AuthServerRow } from '../../auth-servers/auth-servers.repository.ts';
import type { AuthServersService } from '../../auth-servers/auth-servers.service.ts';
import type { Clock } from '../../clock.ts';
import { InvalidInputError, NotFoundError } from '../../errors.ts';
import type { LoginContext } from '../auth.service.ts';
import type { SignInResult } from '../sign-in.service.ts';
import { hashToken, newToken, safeEqual } from '../tokens.ts';
import type { SsoIdentity, SsoSignIn } from '../sso/complete-sign-in.ts';
import type { SsoStatesRepository } from '../sso/sso-states.repository.ts';
import { fetchIdpMetadata, parseIdpMetadata } from './idp-metadata.ts';
import type { SamlRepository } from './saml.repository.ts';
import { MAX_ASSERTION_AGE_MS, REQUEST_TTL_MS, assertionFacts, attributeValues, refusalReason, responseFacts, samlFor, spUrls } from './saml-sp.ts';

/**
 * SAML 2.0 SP-initiated sign-in: an AuthnRequest out by HTTP-Redirect, the Response back by HTTP-POST
 * to the ACS. The request id is kept in the shared `sso_states` and spent before the response is
 * even checked (the first POST that names it wins, on any node); the assertion id is recorded in
 * `saml_assertions`, whose key refuses a second use. node-saml checks the signature, audience and
 * dates; this service adds the recipient, destination and issuer checks, then hands the identity to
 * `SsoSignIn.complete`, which every SSO kind shares.
 */
export class SamlSignInService {
  constructor(
    private readonly deps: { authServers: AuthServersService; states: SsoStatesRepository; assertions: SamlRepository; sso: SsoSignIn; clock: Clock; publicUrl: string | null },
  ) {}

  /** The SP metadata the IdP administrator imports (entity id, ACS URL, signing certificate when requests are signed). */
  async metadata(name: string): Promise<string> {
    const server = await this.#server(name, false);
    const keys = this.deps.authServers.samlKeysFor(server);
    const saml = samlFor(server, keys, this.#publicUrl(), noCache);
    return saml.generateServiceProviderMetadata(null, (server.config as SamlSettings).signRequests ? (keys.spCertificate ?? null) : null);
  }

  /** IdP metadata (XML text, or a URL fetched now) → the settings it determines, for the console form or a site file. */
  async importIdpMetadata(input: { xml?: string; url?: string }): Promise<IdpMetadata> {
    return input.url ? fetchIdpMetadata(input.url) : parseIdpMetadata(input.xml ?? '');
  }

  /**
   * `binding`: when the public URL is https, a random value for the browser's `SameSite=None; Secure`
   * cookie; the ACS then accepts the response only from the browser that holds it (login CSRF).
   */
  async start(name: string, opts: { returnTo?: string }): Promise<{ url: string; binding: string | null }> {
    const server = await this.#server(name, true);
    const now = this.deps.clock.now();
    let requestId: string | null = null;
    const capture: CacheProvider = { ...noCache, saveAsync: async (key, value) => ((requestId = key), { value, createdAt: now.getTime() }) };
    const url = await samlFor(server, this.deps.authServers.samlKeysFor(server), this.#publicUrl(), capture).getAuthorizeUrlAsync('', undefined, {});
    if (!requestId) throw new Error('node-saml made an AuthnRequest without an id');
    const binding = this.#publicUrl().startsWith('https://') ? newToken() : null;
    await this.deps.states.put(requestId, {
      purpose: 'saml-request',
      authServerId: server.id,
      payload: { returnTo: safeReturnTo(opts.returnTo), createdAt: now.toISOString(), ...(binding ? { bindingHash: hashToken(binding) } : {}) },
      now,
      expiresAt: new Date(now.getTime() + REQUEST_TTL_MS),
    });
    // Used assertions past their expiry are forgotten here, so the table stays small without a job.
    await this.deps.assertions.sweep(now);
    return { url, binding };
  }

  /** The IdP posted `samlResponse` (base64) to the ACS. Every refusal is audited and answers 401. */
  async acs(name: string, samlResponse: string, ctx: LoginContext, binding?: string): Promise<{ result: SignInResult; returnTo: string }> {
    const server = await this.#server(name, true);
    const s = server.config as SamlSettings;
    const refuse = async (reason: string, check: string, details: Record<string, unknown> = {}) => this.deps.sso.refuse(server, ctx, reason, { check, ...details });
    const response = responseFacts(samlResponse);
    if (!response) throw await refuse('not a SAML Response (base64 XML)', 'format');
    const now = this.deps.clock.now();
    // Spent now, whatever follows: a response that fails a check has used up its request too.
    const taken = response.inResponseTo ? await this.deps.states.take(response.inResponseTo, 'saml-request', now) : null;
    if (!taken || taken.authServerId !== server.id) throw await refuse('unknown, expired or already used request id (InResponseTo)', 'in-response-to');
    const p = taken.payload as { returnTo: string; createdAt: string; bindingHash?: string };
    if (p.bindingHash && !(binding && safeEqual(hashToken(binding), p.bindingHash))) {
      throw await refuse('the sign-in was started in another browser (binding cookie missing or different)', 'browser-binding');
    }
    const cache: CacheProvider = { ...noCache, getAsync: async (key) => (key === response.inResponseTo ? p.createdAt : null) };

    const urls = spUrls(this.#publicUrl(), server.name);
    let profile: Profile | null;
    try {
      ({ profile } = await samlFor(server, this.deps.authServers.samlKeysFor(server), this.#publicUrl(), cache).validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (err) {
      throw await refuse(refusalReason(err as Error), 'response', { error: (err as Error).message.slice(0, 300) });
    }
    if (!profile) throw await refuse('the response carries no assertion', 'response');
    const facts = assertionFacts(profile);
    if (!facts.recipients.length || facts.recipients.some((r) => r !== urls.acs)) throw await refuse('wrong recipient (SubjectConfirmationData Recipient is not our ACS URL)', 'recipient', { recipients: facts.recipients });
    if (response.destination && response.destination !== urls.acs) throw await refuse('wrong destination (the Response was sent to another ACS URL)', 'destination', { destination: response.destination });
    if (profile.issuer !== s.idpEntityId) throw await refuse('wrong issuer', 'issuer', { issuer: profile.issuer ?? null });
    if (!facts.id) throw await refuse('the assertion has no ID', 'replay');
    const until = Math.max(facts.notOnOrAfter?.getTime() ?? now.getTime() + MAX_ASSERTION_AGE_MS, now.getTime()) + s.clockSkewMs;
    const fresh = await this.deps.assertions.recordAssertion({ authServerId: server.id, assertionId: facts.id, createdAt: now, expiresAt: new Date(until) });
    if (!fresh) throw await refuse('assertion replayed (its ID was already used to sign in)', 'replay', { assertionId: facts.id });

    const identity = await this.#identity(server, s, profile, facts.authnContextClassRef, refuse);
    return { result: await this.deps.sso.complete(identity, ctx), returnTo: p.returnTo };
  }

  async #identity(server: AuthServerRow, s: SamlSettings, profile: Profile, classRef: string | null, refuse: (reason: string, check: string, details?: Record<string, unknown>) => Promise<Error>): Promise<SsoIdentity> {
    const subject = profile.nameID;
    const username = s.usernameAttribute ? (attributeValues(profile, s.usernameAttribute)?.[0] ?? null) : subject;
    if (!subject || !username) throw await refuse(s.usernameAttribute ? `the assertion has no "${s.usernameAttribute}" attribute (config.usernameAttribute)` : 'the assertion has no NameID', 'attributes', { subject: subject ?? null });
    const mfaDone = classRef !== null && s.mfaAuthnContexts.includes(classRef);
    if (s.requireIdpMfa && !mfaDone) throw await refuse('the IdP did not prove multi-factor authentication (AuthnContextClassRef) and this server requires it', 'mfa', { username, authnContextClassRef: classRef });
    // A configured groups attribute that is absent means "no groups"; no attribute configured leaves memberships alone.
    const groups = s.groupsAttribute ? (attributeValues(profile, s.groupsAttribute) ?? []) : null;
    return {
      authServerId: server.id,
      subject,
      username,
      displayName: s.displayNameAttribute ? (attributeValues(profile, s.displayNameAttribute)?.[0] ?? null) : null,
      email: typeof profile.email === 'string' ? profile.email : null,
      groups,
      mfaDone,
      details: { nameIdFormat: profile.nameIDFormat ?? null, ...(profile.sessionIndex ? { sessionIndex: profile.sessionIndex } : {}), ...(classRef ? { authnContextClassRef: classRef } : {}) },
    };
  }

  async #server(name: string, enabledOnly: boolean): Promise<AuthServerRow> {
    const server = (await this.deps.authServers.rows()).find((r) => r.kind === 'saml' && r.name.toLowerCase() === name.toLowerCase());
    if (!server || (enabledOnly && !server.enabled)) throw new NotFoundError('SAML sign-in', name);
    return server;
  }

  #publicUrl(): string {
    if (!this.deps.publicUrl) throw new InvalidInputError('single sign-on needs STAGEDOOR_PUBLIC_URL (the address browsers use to reach Stagedoor): the ACS URL is built from it', [{ path: 'STAGEDOOR_PUBLIC_URL', message: 'is not set' }]);
    return this.deps.publicUrl;
  }
}

const noCache: CacheProvider = { saveAsync: async () => null, getAsync: async () => null, removeAsync: async () => null };

/** Only a path on this site: `//evil.example` and absolute URLs would make the ACS an open redirect. */
function safeReturnTo(v: string | undefined): string {
  return v && /^\/(?![/\\])[^\s]*$/.test(v) ? v : '/';
}
