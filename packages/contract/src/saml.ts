import { z } from 'zod';
import { Uuid } from './common.ts';

/**
 * SAML 2.0 service-provider settings of a `saml` auth server (issue 18). Stagedoor is the SP; the
 * identity provider (Okta, Entra ID, Google, Keycloak…) is described by its entity id, its
 * single sign-on URL and its signing certificates, typed in or imported from its metadata.
 */
const HttpUrl = z
  .string()
  .trim()
  .max(2048)
  .regex(/^https?:\/\/[^\s/?#]+[^\s]*$/i, 'must be an http:// or https:// URL');
const Pem = z.string().max(65536).regex(/-----BEGIN CERTIFICATE-----/, 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)');
const OneLine = (max: number) => z.string().trim().min(1).max(max).regex(/^[^\n\r\t]+$/, 'must be one line');

export const SamlSettings = z.strictObject({
  idpEntityId: OneLine(1024).describe('the IdP entity id (Issuer of its responses)'),
  idpSsoUrl: HttpUrl.describe('the IdP single sign-on endpoint for the HTTP-Redirect binding'),
  idpCertificates: z.array(Pem).min(1, 'needs the IdP signing certificate').max(5).describe('the IdP signing certificates (PEM); two during a rollover'),
  idpMetadataUrl: HttpUrl.optional().describe('where the IdP settings were imported from; kept for the record, not fetched again'),
  spEntityId: OneLine(1024).optional().describe('the SP entity id the IdP knows Stagedoor by; the SP metadata URL when absent'),
  usernameAttribute: OneLine(512).optional().describe('the attribute holding the Stagedoor username; the NameID when absent'),
  displayNameAttribute: OneLine(512).optional().describe('the attribute holding the display name'),
  groupsAttribute: OneLine(512).optional().describe('the attribute listing the user\'s groups; mapped groups are left alone when absent'),
  signRequests: z.boolean().default(false).describe('sign AuthnRequests with the SP key (generated on first use, stored encrypted; its certificate is in the SP metadata)'),
  wantSignedAssertions: z.literal(true, { error: 'cannot be switched off: unsigned assertions are always refused' }).default(true).describe('always true; here so the rule is visible'),
  clockSkewMs: z.number().int().min(0).max(300_000).default(60_000).describe('tolerance for NotBefore / NotOnOrAfter between the IdP\'s clock and ours'),
});
export type SamlSettings = z.infer<typeof SamlSettings>;

/** A group as the IdP names it (a name, an id or a DN: whatever it puts in the groups attribute), compared case-insensitively. */
export const SsoGroupMapping = z.strictObject({
  externalGroup: OneLine(1024).describe('the group as the identity provider sends it (compared case-insensitively)'),
  groupId: Uuid,
});

/** Read an IdP's metadata into the settings it determines. */
export const ImportIdpMetadata = z
  .strictObject({
    xml: z.string().min(1).max(1_000_000).optional().describe('the metadata document itself'),
    url: HttpUrl.optional().describe('fetched by the broker'),
  })
  .refine((v) => !!v.xml !== !!v.url, { message: 'give either xml or url', path: ['xml'] });

export const IdpMetadata = z.object({
  idpEntityId: z.string(),
  idpSsoUrl: z.string(),
  idpCertificates: z.array(z.string()),
  idpMetadataUrl: z.string().optional(),
});
export type IdpMetadata = z.infer<typeof IdpMetadata>;
