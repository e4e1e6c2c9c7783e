import type { Role } from '@stagedoor/contract';
import type { AuthServerRow } from '../../auth-servers/auth-servers.repository.ts';
import type { AuthServersService } from '../../auth-servers/auth-servers.service.ts';
import type { AuditService } from '../../audit/audit.service.ts';
import { normalizeDn } from '../directory.ts';
import type { Actor } from '../actor.ts';
import type { LoginContext } from '../auth.service.ts';
import type { ExternalProvisioning } from '../provision.ts';
import { SsoRefusedError } from '../sign-in-errors.ts';
import type { SignInResult, SignInService } from '../sign-in.service.ts';

/** What an identity provider said about the person, after the protocol's own checks passed. */
export interface SsoIdentity {
  authServerId: string;
  /** OIDC `sub`, SAML NameID: the IdP's stable id for the person. */
  subject: string;
  username: string;
  displayName?: string | null;
  email?: string | null;
  /** The groups claim or attribute; null when the IdP sent none (memberships are then left as they are). */
  groups: string[] | null;
  /** The IdP did multi-factor authentication (acr/amr, AuthnContext) as the auth server requires. */
  mfaDone: boolean;
  /** Protocol facts for the audit row (acr, amr, session index …); never tokens. */
  details?: Record<string, unknown>;
}

/** Settings both SSO kinds carry in `auth_servers.config` (see the contract's SsoCommonSettings). */
export interface SsoCommonConfig {
  /** `when-idp-mfa-missing` (default): skip Stagedoor's own second factor when the IdP did MFA; `always`: never skip it. */
  secondFactor?: 'when-idp-mfa-missing' | 'always';
  /** IdP group → Stagedoor role; the highest matching role wins, `user` when none matches. Absent: roles are Stagedoor's to set. */
  roleMappings?: { externalGroup: string; role: Role }[];
}

const ROLE_RANK: Record<Role, number> = { user: 0, auditor: 1, operator: 2, admin: 3 };

/**
 * The end of every SSO sign-in, whatever the protocol: the just-in-time user linked to the auth server
 * (ExternalProvisioning's rule: never someone else's account), memberships in mapped groups set to what
 * the IdP says, an optional role from groups, the second-factor decision, then the session — the same
 * `SignInService` path a password sign-in takes. Every refusal is audited and thrown as `SsoRefusedError`.
 */
export class SsoSignIn {
  constructor(private readonly deps: { authServers: AuthServersService; provisioning: ExternalProvisioning; signIn: SignInService; audit: AuditService }) {}

  async complete(identity: SsoIdentity, ctx: LoginContext): Promise<SignInResult> {
    const server = (await this.deps.authServers.rows()).find((s) => s.id === identity.authServerId);
    if (!server || !server.enabled || (server.kind !== 'oidc' && server.kind !== 'saml')) {
      throw await this.refuse(server ?? null, ctx, 'the auth server is disabled or no longer exists', { username: identity.username });
    }
    const base = { authServer: server.name, authServerId: server.id, protocol: server.kind, subject: identity.subject, ...(identity.details ?? {}) };
    const config = server.config as SsoCommonConfig;
    const role = this.#role(config, identity.groups);
    const r = await this.deps.provisioning.provision(
      server,
      { username: identity.username, displayName: identity.displayName ?? null, email: identity.email ?? null, subject: identity.subject },
      identity.groups,
      { role, refreshProfile: true },
    );
    if (!r.ok) {
      throw await this.refuse(server, ctx, r.reason, { ...base, username: identity.username }, r.user?.id ?? null, 'this account already exists and belongs to another sign-in method: ask an administrator to link it to this identity provider');
    }
    const details = { ...base, mfaAtIdp: identity.mfaDone, ...(r.groups && (r.groups.added.length || r.groups.removed.length) ? { groups: r.groups } : {}) };
    if (r.user.disabled) throw await this.refuse(server, ctx, 'account disabled', details, r.user.id, 'this account is disabled');
    const skip = identity.mfaDone && (config.secondFactor ?? 'when-idp-mfa-missing') === 'when-idp-mfa-missing';
    return this.deps.signIn.afterExternalSignIn(r.user, server, ctx, details, { skipSecondFactor: skip });
  }

  /**
   * Audit a refused SSO sign-in and return the error to throw. Protocol checks (state, token
   * signature, audience, replay) call this too, so every refusal has one shape in the audit log.
   */
  async refuse(server: AuthServerRow | null, ctx: LoginContext, reason: string, details: Record<string, unknown> = {}, userId: string | null = null, message?: string): Promise<SsoRefusedError> {
    const username = typeof details.username === 'string' ? details.username : 'anonymous';
    const actor: Actor = { userId, username, role: 'user', sourceAddress: ctx.sourceAddress, requestId: ctx.requestId, via: 'anonymous' };
    await this.deps.audit.recordRefusal(actor, {
      action: 'auth.login',
      outcome: 'failure',
      reason,
      details: { ...(server ? { authServer: server.name, authServerId: server.id, protocol: server.kind } : {}), ...details },
    });
    return new SsoRefusedError(message ?? `single sign-on was refused: ${reason}. Start the sign-in again from the login page`, { reason });
  }

  #role(config: SsoCommonConfig, groups: string[] | null): Role | null {
    if (!config.roleMappings?.length || groups === null) return null;
    const have = new Set(groups.map(normalizeDn));
    let best: Role = 'user';
    for (const m of config.roleMappings) if (have.has(normalizeDn(m.externalGroup)) && ROLE_RANK[m.role] > ROLE_RANK[best]) best = m.role;
    return best;
  }
}
