import { X509Certificate } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import type { IdpMetadata } from '@stagedoor/contract';
import { InvalidInputError } from '../../errors.ts';

const MD = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS = 'http://www.w3.org/2000/09/xmldsig#';
const REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const FETCH_TIMEOUT_MS = 10_000;
const MAX_BYTES = 1_000_000;

/**
 * An IdP's SAML metadata → the settings it determines: entity id, the HTTP-Redirect single sign-on
 * URL, and the signing certificates (KeyDescriptors with use="signing" or no use). The first
 * EntityDescriptor with an IDPSSODescriptor counts, so an aggregate (EntitiesDescriptor) works too.
 * The metadata's own signature is not checked: an admin reviews what was imported before saving.
 */
export function parseIdpMetadata(xml: string): IdpMetadata {
  let doc;
  try {
    doc = new DOMParser({ errorHandler: { warning: () => {}, error: () => {}, fatalError: (m: string) => { throw new Error(m); } } }).parseFromString(xml, 'text/xml');
  } catch (err) {
    bad('xml', `is not XML: ${(err as Error).message.slice(0, 200)}`);
  }
  const idp = Array.from(doc.getElementsByTagNameNS(MD, 'IDPSSODescriptor'))[0];
  const entity = idp?.parentNode as Element | null | undefined;
  if (!idp || !entity || entity.localName !== 'EntityDescriptor') bad('xml', 'has no EntityDescriptor with an IDPSSODescriptor: is this the IdP (not the SP) metadata?');
  const entityId = entity.getAttribute('entityID');
  if (!entityId) bad('xml', 'the EntityDescriptor has no entityID');
  const sso = Array.from(idp.getElementsByTagNameNS(MD, 'SingleSignOnService')).find((e) => e.getAttribute('Binding') === REDIRECT);
  const location = sso?.getAttribute('Location');
  if (!location) bad('xml', 'the IdP offers no SingleSignOnService with the HTTP-Redirect binding, which Stagedoor uses');
  const certificates = Array.from(idp.getElementsByTagNameNS(MD, 'KeyDescriptor'))
    .filter((k) => (k.getAttribute('use') ?? 'signing') === 'signing' || k.getAttribute('use') === '')
    .flatMap((k) => Array.from(k.getElementsByTagNameNS(DS, 'X509Certificate')))
    .map((c) => toPem(c.textContent ?? ''));
  const unique = [...new Set(certificates)];
  if (!unique.length) bad('xml', 'the IDPSSODescriptor lists no signing certificate');
  unique.forEach((pem) => {
    try {
      new X509Certificate(pem);
    } catch (err) {
      bad('xml', `holds an unreadable certificate: ${(err as Error).message}`);
    }
  });
  return { idpEntityId: entityId, idpSsoUrl: location, idpCertificates: unique.slice(0, 5) };
}

/** Fetch the metadata from `url` (an admin action: the broker reaches out once, bounded in time and size). */
export async function fetchIdpMetadata(url: string): Promise<IdpMetadata> {
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS), redirect: 'follow', headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' } });
    if (!res.ok) bad('url', `answered HTTP ${res.status}`);
    text = await res.text();
  } catch (err) {
    if (err instanceof InvalidInputError) throw err;
    bad('url', `could not be fetched: ${(err as Error).message}`);
  }
  if (text.length > MAX_BYTES) bad('url', 'returned more than 1 MB: not a single IdP metadata document');
  return { ...parseIdpMetadata(text), idpMetadataUrl: url };
}

function toPem(base64: string): string {
  const body = base64.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----\n`;
}

function bad(path: string, message: string): never {
  throw new InvalidInputError(`IdP metadata: ${path} ${message}`, [{ path, message }]);
}
