import type { Item } from './resources.ts';

/** The SAML parts of the console's auth-server form and list, kept apart from the generic resource specs. */

const KIND_LABELS: Record<string, string> = { oidc: 'oidc (OpenID Connect single sign-on)', saml: 'saml (SAML 2.0 single sign-on)' };
export const authServerKindOptions = ['local', 'ldap', 'radius', 'totp', 'oidc', 'saml'].map((k) => ({ value: k, label: KIND_LABELS[k] ?? k }));

export const SAML_CONFIG_HELP =
  ' SAML: {"idpEntityId": "…", "idpSsoUrl": "https://…", "idpCertificates": ["-----BEGIN CERTIFICATE-----…"], "usernameAttribute": "uid", "displayNameAttribute": "displayName", "groupsAttribute": "groups", "label": "Sign in with Keycloak"}; the first three come from the IdP metadata (POST {"url": …} or {"xml": …} to /api/v1/auth-servers/saml/idp-metadata); give the IdP the server\'s SP metadata (link in the list)';

/** A saml server's SP metadata URL, the one thing the IdP administrator needs from Stagedoor. */
export const spMetadataColumn = {
  label: 'SP metadata',
  value: (a: Item) => (a.kind === 'saml' ? 'SP metadata' : ''),
  links: (a: Item) => (a.kind === 'saml' ? [{ text: 'SP metadata', href: `/api/v1/auth-servers/${encodeURIComponent(String(a.name))}/saml/metadata` }] : []),
};
