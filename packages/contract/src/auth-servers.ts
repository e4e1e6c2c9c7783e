import { z } from 'zod';
import { Timestamp, Uuid } from './common.ts';

/**
 * Auth servers: where passwords and second factors are checked. Settings are per kind; secrets (the
 * LDAP bind password, the RADIUS shared secret) are write-only fields that no answer ever carries.
 */
export const AuthServerKind = z.enum(['local', 'ldap', 'radius', 'totp', 'oidc', 'saml']);
export type AuthServerKind = z.infer<typeof AuthServerKind>;
export const AuthServerPurpose = z.enum(['primary', 'second-factor']);

const Name = z.string().trim().min(1).max(128).regex(/^[^\n\r\t]+$/, 'must be one line');
const Dn = z.string().trim().min(1).max(1024).regex(/^[^\n\r]+=[^\n\r]+$/, 'must be a distinguished name such as dc=example,dc=org');
const Attribute = z.string().regex(/^[A-Za-z][A-Za-z0-9-]{0,63}$/, 'must be an LDAP attribute name');
const LdapUrl = z
  .string()
  .trim()
  .regex(/^ldaps?:\/\/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?\/?$/, 'must be ldap://host[:port] or ldaps://host[:port]');
const Pem = z.string().max(65536).regex(/-----BEGIN CERTIFICATE-----/, 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)');
const Millis = (min: number, max: number, dflt: number) => z.number().int().min(min).max(max).default(dflt);

export const LdapGroupMembership = z.enum(['ad-member-of', 'group-of-names', 'posix-group']);

export const LdapSettings = z
  .strictObject({
    urls: z.array(LdapUrl).min(1, 'needs at least one URL').max(10).describe('tried in order; an unreachable URL moves to the next'),
    startTls: z.boolean().default(false).describe('upgrade ldap:// with StartTLS before anything is sent'),
    allowInsecure: z
      .boolean()
      .default(false)
      .describe('allow ldap:// without StartTLS: the bind password and every user password then cross the network in clear text; only for a directory on the same host or a trusted link'),
    caCertificate: Pem.optional().describe('PEM of the CA that issued the directory server certificate; the system CAs when absent'),
    bindDn: Dn.optional().describe('service account that searches for users; anonymous when absent'),
    userSearchBase: Dn,
    userFilter: z
      .string()
      .trim()
      .min(3)
      .max(1024)
      .regex(/^\(.*\)$/, 'must be an LDAP filter in parentheses')
      .refine((f) => f.includes('{username}'), 'must contain {username}, e.g. (sAMAccountName={username})')
      .describe('{username} is replaced by the escaped login name'),
    usernameAttribute: Attribute.optional().describe('the Stagedoor username; sAMAccountName for AD, uid otherwise'),
    groupMembership: LdapGroupMembership.describe('ad-member-of: AD, nested groups included; group-of-names: nested groupOfNames; posix-group: memberUid'),
    groupSearchBase: Dn.optional().describe('where groups live; the dc= part of userSearchBase when absent'),
    connectTimeoutMs: Millis(100, 60_000, 5_000),
    searchTimeoutMs: Millis(100, 120_000, 10_000),
  })
  .refine((c) => !(c.startTls && c.urls.some((u) => /^ldaps:/i.test(u))), { message: 'startTls is for ldap:// URLs; ldaps:// is TLS already', path: ['startTls'] })
  .refine((c) => c.startTls || c.allowInsecure || !c.urls.some((u) => /^ldap:/i.test(u)), {
    message: 'ldap:// without StartTLS sends passwords in clear text: set startTls: true, use ldaps://, or set allowInsecure: true to accept that',
    path: ['startTls'],
  });
export type LdapSettings = z.infer<typeof LdapSettings>;

export const RadiusSettings = z.strictObject({
  servers: z
    .array(z.strictObject({ host: z.string().trim().min(1).max(253).regex(/^[A-Za-z0-9.:-]+$/, 'must be a host name or IP address'), port: z.number().int().min(1).max(65535).default(1812) }))
    .min(1, 'needs at least one server')
    .max(10)
    .describe('tried in order when one does not answer'),
  timeoutMs: Millis(100, 120_000, 3_000).describe('per try; raise it for push approvals that hold the answer'),
  retries: z.number().int().min(0).max(10).default(2),
  nasIdentifier: z.string().min(1).max(64).default('stagedoor'),
  secondFactorRequest: z
    .enum(['password', 'code'])
    .default('password')
    .describe('as a second factor: password — send the password just checked (Okta RADIUS agent, Duo proxy), then answer challenges; code — ask the user for a code first'),
  prompt: z.string().min(1).max(200).optional().describe('shown when asking for a code without a Reply-Message from the server'),
  requireMessageAuthenticator: z
    .boolean()
    .default(true)
    .describe('refuse answers without a valid Message-Authenticator (BlastRADIUS, CVE-2024-3596); servers before FreeRADIUS 3.2.5 and the like do not send one. Servers stored before this setting existed keep false'),
});
export type RadiusSettings = z.infer<typeof RadiusSettings>;

const Claim = z.string().trim().min(1).max(128).regex(/^[^\s]+$/, 'must be a claim name without spaces');
const ExternalName = z.string().trim().min(1).max(1024).regex(/^[^\n\r]+$/, 'must be one line');
const Role = z.enum(['admin', 'operator', 'auditor', 'user']);

/** Settings both SSO kinds share: the login button, roles from groups, and what IdP-side MFA is worth. */
export const SsoCommonSettings = {
  label: z.string().trim().min(1).max(64).optional().describe('the login page button text; "Sign in with <name>" when absent'),
  secondFactor: z
    .enum(['when-idp-mfa-missing', 'always'])
    .default('when-idp-mfa-missing')
    .describe("when-idp-mfa-missing: Stagedoor's own second factor (mfaServerId, group or TOTP) is skipped when the IdP proved MFA; always: it is asked for anyway"),
  requireIdpMfa: z.boolean().default(false).describe('refuse the sign-in unless the IdP proved MFA (acrValues / amrValues)'),
  roleMappings: z
    .array(z.strictObject({ externalGroup: ExternalName, role: Role }))
    .max(100)
    .default([])
    .describe('IdP group → Stagedoor role, set at each sign-in (highest match wins, user when none); empty: roles are set in Stagedoor'),
};

const LOOPBACK = /^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?(\/|$)/i;
export const OidcSettings = z.strictObject({
  issuer: z
    .string()
    .trim()
    .url('must be a URL')
    .refine((u) => u.startsWith('https://') || LOOPBACK.test(u), 'must be https:// (http:// only for a loopback test IdP)')
    .describe('the issuer URL; /.well-known/openid-configuration under it is read for everything else'),
  clientId: z.string().trim().min(1).max(512),
  scopes: z.array(z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'must be a scope token')).min(1).max(30).default(['openid', 'profile', 'email']).refine((s) => s.includes('openid'), 'must include openid'),
  usernameClaim: Claim.default('preferred_username').describe('Entra ID: preferred_username (the UPN) or upn; Google: email'),
  displayNameClaim: Claim.default('name'),
  emailClaim: Claim.default('email'),
  groupsClaim: Claim.default('groups'),
  userinfo: z.boolean().default(false).describe('also read the userinfo endpoint; its claims fill in what the ID token lacks'),
  acrValues: z.array(z.string().min(1).max(256)).max(10).default([]).describe('asked for with acr_values; an ID token whose acr is one of them counts as MFA at the IdP'),
  amrValues: z.array(z.string().min(1).max(64)).max(10).default([]).describe('an ID token whose amr holds one of them (mfa, otp, hwk …) counts as MFA at the IdP'),
  ...SsoCommonSettings,
});
export type OidcSettings = z.infer<typeof OidcSettings>;

const SamlUrl = z
  .string()
  .trim()
  .max(2048)
  .regex(/^https?:\/\/[^\s/?#]+[^\s]*$/i, 'must be an http:// or https:// URL');
const SamlText = (max: number) => z.string().trim().min(1).max(max).regex(/^[^\n\r\t]+$/, 'must be one line');

/**
 * SAML 2.0 service-provider settings. Stagedoor is the SP; the identity provider is described by its
 * entity id, single sign-on URL and signing certificates, typed in or imported from its metadata
 * (POST /api/v1/auth-servers/saml/idp-metadata).
 */
export const SamlSettings = z.strictObject({
  idpEntityId: SamlText(1024).describe('the IdP entity id (Issuer of its responses)'),
  idpSsoUrl: SamlUrl.describe('the IdP single sign-on endpoint for the HTTP-Redirect binding'),
  idpCertificates: z.array(Pem).min(1, 'needs the IdP signing certificate').max(5).describe('the IdP signing certificates (PEM); two during a rollover'),
  idpMetadataUrl: SamlUrl.optional().describe('where the IdP settings were imported from; kept for the record, not fetched again'),
  spEntityId: SamlText(1024).optional().describe('the SP entity id the IdP knows Stagedoor by; the SP metadata URL when absent'),
  usernameAttribute: SamlText(512).optional().describe('the attribute holding the Stagedoor username; the NameID when absent'),
  displayNameAttribute: SamlText(512).optional().describe('the attribute holding the display name'),
  groupsAttribute: SamlText(512).optional().describe('the attribute listing the user\'s groups; mapped groups are left alone when absent'),
  signRequests: z.boolean().default(false).describe('sign AuthnRequests with the SP key (generated on first use, stored encrypted; its certificate is in the SP metadata)'),
  wantSignedAssertions: z.literal(true, { error: 'cannot be switched off: unsigned assertions are always refused' }).default(true).describe('always true; here so the rule is visible'),
  clockSkewMs: z.number().int().min(0).max(300_000).default(60_000).describe('tolerance for NotBefore / NotOnOrAfter between the IdP\'s clock and ours'),
  mfaAuthnContexts: z
    .array(z.string().trim().min(1).max(256))
    .max(10)
    .default([])
    .describe('an assertion whose AuthnContextClassRef is one of these counts as MFA at the IdP (e.g. Okta: urn:okta:acr:2fa... ; Entra: http://schemas.microsoft.com/claims/multipleauthn)'),
  ...SsoCommonSettings,
});
export type SamlSettings = z.infer<typeof SamlSettings>;


export const TotpSettings = z.strictObject({ issuer: z.string().trim().min(1).max(100).default('Stagedoor') });
export const LocalSettings = z.strictObject({});

export const GroupMapping = z.strictObject({
  externalGroup: Dn.describe('the directory group DN (compared case-insensitively)'),
  groupId: Uuid,
});

const common = {
  name: Name,
  enabled: z.boolean().default(true),
  position: z.number().int().min(1).max(10_000).optional().describe('lookup order; appended at the end when absent'),
};
const mfaServerId = Uuid.nullable().optional().describe('a second-factor server (radius or totp) every user of this server must pass');
const requiredForGroupIds = z.array(Uuid).max(1000).optional().describe('members of these groups must pass this second factor, whatever checked their password');

/** An IdP group (an OIDC groups claim value, a SAML attribute value) → Stagedoor group; compared case-insensitively. */
export const SsoGroupMapping = z.strictObject({ externalGroup: ExternalName.describe('the group as the IdP sends it (Entra ID: the group object id)'), groupId: Uuid });

const LocalServer = z.strictObject({ kind: z.literal('local'), ...common, config: LocalSettings.default({}), mfaServerId });
const LdapServer = z.strictObject({
  kind: z.literal('ldap'),
  ...common,
  config: LdapSettings,
  bindPassword: z.string().min(1).max(1024).optional().describe('write-only; encrypted at rest; must be given again when urls, bindDn or the TLS settings change'),
  mfaServerId,
  groupMappings: z.array(GroupMapping).max(1000).default([]),
});
const RadiusServer = z.strictObject({
  kind: z.literal('radius'),
  ...common,
  purpose: AuthServerPurpose.default('second-factor'),
  config: RadiusSettings,
  sharedSecret: z.string().min(1).max(256).describe('write-only; encrypted at rest; must be given again when a server host or port changes'),
  mfaServerId,
  requiredForGroupIds,
});
const OidcServer = z.strictObject({
  kind: z.literal('oidc'),
  ...common,
  config: OidcSettings,
  clientSecret: z.string().min(1).max(1024).describe('write-only; encrypted at rest; must be given again when the issuer or client id changes'),
  mfaServerId,
  groupMappings: z.array(SsoGroupMapping).max(1000).default([]),
});
const TotpServer = z.strictObject({ kind: z.literal('totp'), ...common, config: TotpSettings.default({ issuer: 'Stagedoor' }), requiredForGroupIds });
const SamlServer = z.strictObject({
  kind: z.literal('saml'),
  ...common,
  config: SamlSettings,
  mfaServerId,
  groupMappings: z.array(SsoGroupMapping).max(1000).default([]),
});

export const CreateAuthServer = z.discriminatedUnion('kind', [LocalServer, LdapServer, RadiusServer, TotpServer, OidcServer, SamlServer]);
export type CreateAuthServer = z.infer<typeof CreateAuthServer>;

/**
 * An auth server as `stagedoor apply` declares it: the create shape, except that secrets may be left
 * out of a file once the server exists (they are then kept as stored).
 */
export const AuthServerSpec = z.discriminatedUnion('kind', [
  LocalServer,
  LdapServer,
  RadiusServer.extend({ sharedSecret: RadiusServer.shape.sharedSecret.optional() }),
  TotpServer,
  OidcServer.extend({ clientSecret: OidcServer.shape.clientSecret.optional() }),
  SamlServer,
]);
export type AuthServerSpec = z.infer<typeof AuthServerSpec>;

/** A change. `config`, when given, replaces the whole settings object and is checked against the server's kind. */
export const UpdateAuthServer = z.strictObject({
  name: Name.optional(),
  enabled: z.boolean().optional(),
  position: z.number().int().min(1).max(10_000).optional(),
  purpose: AuthServerPurpose.optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  bindPassword: z.string().min(1).max(1024).nullable().optional().describe('null removes it (anonymous search)'),
  sharedSecret: z.string().min(1).max(256).optional(),
  clientSecret: z.string().min(1).max(1024).optional(),
  mfaServerId,
  groupMappings: z.array(z.strictObject({ externalGroup: ExternalName, groupId: Uuid })).max(1000).optional().describe('ldap: DNs; oidc/saml: group names or ids as the IdP sends them'),
  requiredForGroupIds,
});
export type UpdateAuthServer = z.infer<typeof UpdateAuthServer>;

export const AuthServer = z.object({
  id: Uuid,
  name: z.string(),
  kind: AuthServerKind,
  purpose: AuthServerPurpose,
  position: z.number().int(),
  enabled: z.boolean(),
  config: z.record(z.string(), z.unknown()),
  secretSet: z.boolean().describe('whether a bind password or shared secret is stored; the secret itself is never shown'),
  mfaServerId: Uuid.nullable(),
  groupMappings: z.array(z.object({ externalGroup: z.string(), groupId: Uuid, groupName: z.string() })),
  requiredForGroups: z.array(z.object({ id: Uuid, name: z.string() })),
  createdAt: Timestamp,
  updatedAt: Timestamp,
});
export type AuthServer = z.infer<typeof AuthServer>;

export const ReorderAuthServers = z.strictObject({ ids: z.array(Uuid).min(1).max(1000).describe('every auth server, in the new order') });

export const TestAuthServer = z.strictObject({
  username: z.string().min(1).max(256).optional().describe('look this user up (LDAP) or send it (RADIUS) as part of the test'),
});
/** A sign-in button on the login page: public, so nothing but what the button needs. */
export const SsoServerButton = z.object({ name: z.string(), kind: z.enum(['oidc', 'saml']), label: z.string(), startUrl: z.string() });
export const SsoServerList = z.object({ items: z.array(SsoServerButton) });

export const AuthServerTestResult = z.object({
  ok: z.boolean(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()),
});

/**
 * An auth server in a site file (`stagedoor apply`): the same settings, with groups and the
 * second-factor server named instead of given by id. Secrets may be left out once the server
 * exists (they are kept); write them as `${ENV_VARS}` so they stay out of the file.
 */
const SiteName = z.string().trim().min(1).max(128);
const siteMfaServer = { mfaServer: SiteName.nullable().optional().describe('a second-factor server (radius or totp), by name, every user of this server must pass') };
const siteRequiredFor = { requiredForGroups: z.array(SiteName).max(1000).optional().describe('members of these groups (by name) must pass this second factor') };
export const SiteAuthServer = z.discriminatedUnion('kind', [
  LocalServer.omit({ mfaServerId: true }).extend(siteMfaServer),
  LdapServer.omit({ mfaServerId: true, groupMappings: true }).extend({
    ...siteMfaServer,
    groupMappings: z.array(z.strictObject({ externalGroup: GroupMapping.shape.externalGroup, group: SiteName.describe('the Stagedoor group, by name') })).max(1000).default([]),
  }),
  RadiusServer.omit({ mfaServerId: true, requiredForGroupIds: true }).extend({ ...siteMfaServer, ...siteRequiredFor, sharedSecret: RadiusServer.shape.sharedSecret.optional() }),
  TotpServer.omit({ requiredForGroupIds: true }).extend(siteRequiredFor),
  OidcServer.omit({ mfaServerId: true, groupMappings: true }).extend({
    ...siteMfaServer,
    clientSecret: OidcServer.shape.clientSecret.optional(),
    groupMappings: z.array(z.strictObject({ externalGroup: SsoGroupMapping.shape.externalGroup, group: SiteName.describe('the Stagedoor group, by name') })).max(1000).default([]),
  }),
  SamlServer.omit({ mfaServerId: true, groupMappings: true }).extend({
    ...siteMfaServer,
    groupMappings: z.array(z.strictObject({ externalGroup: SsoGroupMapping.shape.externalGroup, group: SiteName.describe('the Stagedoor group, by name') })).max(1000).default([]),
  }),
]);
export type SiteAuthServer = z.infer<typeof SiteAuthServer>;
