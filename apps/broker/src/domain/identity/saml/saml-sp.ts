import { DOMParser } from '@xmldom/xmldom';
import { SAML, ValidateInResponseTo, type CacheProvider, type Profile } from '@node-saml/node-saml';
import type { SamlSettings } from '@stagedoor/contract';
import type { AuthServerRow } from '../../auth-servers/auth-servers.repository.ts';
import type { AuthServerSecrets } from '../../auth-servers/connectors.ts';

/** How long an AuthnRequest may wait for its answer: the user signs in at the IdP meanwhile (MFA included). */
export const REQUEST_TTL_MS = 10 * 60_000;
/** An assertion older than this is refused even if the IdP let it live longer (node-saml's maxAssertionAgeMs). */
export const MAX_ASSERTION_AGE_MS = 10 * 60_000;

/** The SP's URLs, all from the configured public URL: never from the Host header, which the client chooses. */
export function spUrls(publicUrl: string, serverName: string) {
  const root = publicUrl.replace(/\/+$/, '');
  const name = encodeURIComponent(serverName);
  return { metadata: `${root}/api/v1/auth-servers/${name}/saml/metadata`, acs: `${root}/api/v1/auth/saml/${name}/acs`, start: `${root}/api/v1/auth/saml/${name}/start` };
}

export function spEntityId(settings: SamlSettings, publicUrl: string, serverName: string): string {
  return settings.spEntityId ?? spUrls(publicUrl, serverName).metadata;
}

/**
 * node-saml configured for one auth server. Fixed, whatever the settings: assertions must be signed
 * (a signed response around an unsigned assertion is not enough), InResponseTo is always required
 * (no IdP-initiated sign-in: an unsolicited response cannot be tied to a browser that asked), the
 * audience is our entity id, and SHA-256 signatures.
 */
export function samlFor(row: AuthServerRow, secrets: AuthServerSecrets, publicUrl: string, cacheProvider: CacheProvider): SAML {
  const s = row.config as SamlSettings;
  const entityId = spEntityId(s, publicUrl, row.name);
  const signing = s.signRequests && secrets.spPrivateKey ? { privateKey: secrets.spPrivateKey, publicCert: secrets.spCertificate, signatureAlgorithm: 'sha256' as const } : {};
  return new SAML({
    entryPoint: s.idpSsoUrl,
    issuer: entityId,
    audience: entityId,
    callbackUrl: spUrls(publicUrl, row.name).acs,
    idpCert: s.idpCertificates,
    idpIssuer: s.idpEntityId,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: false,
    acceptedClockSkewMs: s.clockSkewMs,
    maxAssertionAgeMs: MAX_ASSERTION_AGE_MS,
    validateInResponseTo: ValidateInResponseTo.always,
    requestIdExpirationPeriodMs: REQUEST_TTL_MS,
    cacheProvider,
    identifierFormat: null,
    disableRequestedAuthnContext: true,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    ...signing,
  });
}

/** A node-saml refusal as a short reason for the audit log (its messages are long and vary by version). */
export function refusalReason(err: Error): string {
  const m = err.message;
  if (/signature/i.test(m)) return 'assertion not signed by the IdP (signature missing or invalid)';
  if (/audience/i.test(m)) return 'wrong audience';
  if (/expired|not yet valid|subject confirmation/i.test(m)) return 'assertion expired or not yet valid';
  if (/InResponseTo/i.test(m)) return 'unknown, expired or used request id (InResponseTo)';
  if (/issuer/i.test(m)) return 'wrong issuer';
  if (/status/i.test(m) || /returned .* error/i.test(m)) return `the IdP refused: ${m.slice(0, 200)}`;
  return `invalid SAML response: ${m.slice(0, 200)}`;
}

/** What the signed assertion says beyond node-saml's profile (all read from the signature-checked assertion). */
export interface AssertionFacts {
  id: string | null;
  recipients: string[];
  notOnOrAfter: Date | null;
  authnContextClassRef: string | null;
}

/** Reads the facts from node-saml's xml2js form of the verified assertion (prefixes stripped). */
export function assertionFacts(profile: Profile): AssertionFacts {
  const a = (profile.getAssertion?.() as { Assertion?: XmlNode } | undefined)?.Assertion;
  const attr = (n: XmlNode | undefined, k: string) => (n?.$ as Record<string, string> | undefined)?.[k];
  const kids = (n: XmlNode | undefined, k: string) => ((n?.[k] as XmlNode[] | undefined) ?? []);
  const confirmations = kids(a, 'Subject').flatMap((s) => kids(s, 'SubjectConfirmation')).flatMap((c) => kids(c, 'SubjectConfirmationData'));
  const dates = [attr(kids(a, 'Conditions')[0], 'NotOnOrAfter'), ...confirmations.map((c) => attr(c, 'NotOnOrAfter'))].filter((d): d is string => !!d).map((d) => new Date(d));
  const classRef = kids(a, 'AuthnStatement').flatMap((s) => kids(s, 'AuthnContext')).flatMap((c) => kids(c, 'AuthnContextClassRef'))[0];
  return {
    id: attr(a, 'ID') ?? null,
    recipients: confirmations.map((c) => attr(c, 'Recipient')).filter((r): r is string => !!r),
    notOnOrAfter: dates.length ? new Date(Math.max(...dates.map((d) => d.getTime()))) : null,
    authnContextClassRef: typeof classRef === 'string' ? classRef : ((classRef as XmlNode | undefined)?._ as string | undefined) ?? null,
  };
}
type XmlNode = Record<string, unknown>;

/**
 * The Response element's InResponseTo and Destination, read before any check (to find the request
 * to spend); null when the text is not a SAML Response. Neither is trusted: the request id only
 * selects which pending request the response must then prove it answers.
 */
export function responseFacts(samlResponse: string): { inResponseTo: string | null; destination: string | null } | null {
  try {
    const xml = Buffer.from(samlResponse, 'base64').toString('utf8');
    const doc = new DOMParser({ errorHandler: { warning: () => {}, error: () => {}, fatalError: () => {} } }).parseFromString(xml, 'text/xml');
    const root = doc?.documentElement;
    if (!root || root.localName !== 'Response') return null;
    return { inResponseTo: root.getAttribute('InResponseTo') || null, destination: root.getAttribute('Destination') || null };
  } catch {
    return null;
  }
}

/** An attribute's values as strings (xml2js gives a string, an array, or objects for typed values). */
export function attributeValues(profile: Profile, name: string | undefined): string[] | null {
  if (!name) return null;
  const raw = (profile.attributes as Record<string, unknown> | undefined)?.[name];
  if (raw === undefined) return null;
  return [raw]
    .flat()
    .map((v) => (typeof v === 'string' ? v : typeof v === 'object' && v && '_' in v ? String((v as { _: unknown })._) : null))
    .filter((v): v is string => !!v && v.trim() !== '')
    .map((v) => v.trim());
}
