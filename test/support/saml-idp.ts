import http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as samlify from 'samlify';
import * as xmllint from '@authenio/samlify-node-xmllint';
import { generateSpKeyPair } from '../../apps/broker/src/domain/identity/saml/sp-key-pair.ts';

/**
 * A real SAML 2.0 identity provider for tests: samlify in the IdP role, with its own RSA key pair,
 * validating our AuthnRequests against the SAML XML schemas (node-xmllint: libxml2 compiled to
 * WebAssembly, no Java) and signing the responses. `respond` answers an AuthnRequest the way a
 * real IdP would, with `tamper` hooks for the attacks; `listen` serves a login page for the browser.
 */
export interface SamlUser {
  nameId: string;
  attributes?: Record<string, string | string[]>;
}

export interface Tamper {
  /** Template values to override (Audience, ConditionsNotOnOrAfter, SubjectRecipient, AssertionID…). */
  values?: Record<string, string>;
  /** The SP metadata claims WantAssertionsSigned=false: samlify then signs only the Response, not the assertion. */
  unsignedAssertion?: boolean;
  /** Edit the signed XML (after signing, so the signature no longer matches). */
  afterSigning?: (xml: string) => string;
}

export interface TestIdp {
  entityId: string;
  ssoUrl: string;
  certificate: string;
  metadataXml: string;
  /** Where the IdP serves its metadata (also its entity id). */
  metadataUrl: string;
  /** Answer the AuthnRequest in `redirectUrl` (our SP's redirect to the IdP) for `user`: the form fields to POST to the ACS. */
  respond(redirectUrl: string, spMetadataXml: string, user: SamlUser, tamper?: Tamper): Promise<{ acs: string; SAMLResponse: string }>;
  /** The browser's IdP: from now on GET /sso shows a sign-in page whose button posts the response to the ACS. */
  listen(spMetadataXml: string, user: SamlUser): Promise<void>;
  close(): Promise<void>;
}

samlify.setSchemaValidator(xmllint);

export async function startTestIdp(opts: { host?: string } = {}): Promise<TestIdp> {
  const keys = await generateSpKeyPair('test-idp');
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const base = `http://${host}:${(server.address() as AddressInfo).port}`;
  const entityId = `${base}/metadata`;
  const ssoUrl = `${base}/sso`;
  const settings = {
    entityID: entityId,
    signingCert: keys.spCertificate,
    privateKey: keys.spPrivateKey,
    singleSignOnService: [{ Binding: samlify.Constants.namespace.binding.redirect, Location: ssoUrl }],
    // Not used (Stagedoor does not do SAML logout); declared so samlify does not warn about it.
    singleLogoutService: [{ Binding: samlify.Constants.namespace.binding.redirect, Location: `${base}/slo` }],
    nameIDFormat: ['urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified'],
    requestSignatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
  };
  const idp = samlify.IdentityProvider(settings);
  // A signed AuthnRequest is verified against the certificate in the SP metadata, as a real IdP does.
  const idpCheckingSignatures = samlify.IdentityProvider({ ...settings, wantAuthnRequestsSigned: true });

  async function respond(redirectUrl: string, spMetadataXml: string, user: SamlUser, tamper: Tamper = {}) {
    const metadata = tamper.unsignedAssertion ? spMetadataXml.replace('WantAssertionsSigned="true"', 'WantAssertionsSigned="false"') : spMetadataXml;
    const sp = samlify.ServiceProvider({ metadata });
    const url = new URL(redirectUrl);
    // The signed octet string: the query as sent, without the Signature parameter (SAML bindings 3.4.4.1).
    const octetString = url.search.slice(1).split('&').filter((p) => !p.startsWith('Signature=')).join('&');
    const checker = url.searchParams.has('Signature') ? idpCheckingSignatures : idp;
    const { extract } = await checker.parseLoginRequest(sp, 'redirect', { query: Object.fromEntries(url.searchParams), octetString });
    const acs = sp.entityMeta.getAssertionConsumerService('post') as string;
    const now = new Date();
    const later = new Date(now.getTime() + 5 * 60_000).toISOString();
    const id = `_${crypto.randomUUID()}`;
    const values: Record<string, string> = {
      ID: id,
      AssertionID: `_${crypto.randomUUID()}`,
      Destination: acs,
      Audience: sp.entityMeta.getEntityID(),
      SubjectRecipient: acs,
      Issuer: entityId,
      IssueInstant: now.toISOString(),
      StatusCode: samlify.Constants.StatusCode.Success,
      ConditionsNotBefore: now.toISOString(),
      ConditionsNotOnOrAfter: later,
      SubjectConfirmationDataNotOnOrAfter: later,
      NameIDFormat: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
      NameID: user.nameId,
      InResponseTo: String(extract.request?.id ?? ''),
    };
    // XML fragments go in as they are (replaceTagsByValue escapes values).
    const fragments: Record<string, string> = {
      AuthnStatement: `<saml:AuthnStatement AuthnInstant="${now.toISOString()}" SessionIndex="${id}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>`,
      AttributeStatement: attributeStatement(user.attributes ?? {}),
    };
    Object.assign(values, tamper.values);
    const fill = (template: string) => samlify.SamlLib.replaceTagsByValue(Object.entries(fragments).reduce((t, [k, v]) => t.replace(`{${k}}`, v), template), values);
    const ctx = (await idp.createLoginResponse(sp, { extract }, 'post', {}, (template: string) => ({ id, context: fill(template) }))) as { context: string };
    let SAMLResponse = ctx.context;
    if (tamper.afterSigning) SAMLResponse = Buffer.from(tamper.afterSigning(Buffer.from(SAMLResponse, 'base64').toString('utf8'))).toString('base64');
    return { acs, SAMLResponse };
  }

  let browserLogin: { spMetadataXml: string; user: SamlUser } | null = null;
  const metadataXml = idp.getMetadata();
  server.on('request', (req, res) => {
    const url = new URL(req.url ?? '/', base);
    if (url.pathname === '/metadata') return void res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' }).end(metadataXml);
    if (url.pathname !== '/sso' || !browserLogin) return void res.writeHead(404).end();
    const { spMetadataXml, user } = browserLogin;
    respond(url.toString(), spMetadataXml, user).then(
      ({ acs, SAMLResponse }) => {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
        res.end(`<!doctype html><title>Test IdP</title><h1>Test IdP</h1><p>Signed in as ${escapeXml(user.nameId)}</p>
<form method="post" action="${escapeXml(acs)}"><input type="hidden" name="SAMLResponse" value="${escapeXml(SAMLResponse)}"><button type="submit">Continue to Stagedoor</button></form>`);
      },
      (err: Error) => res.writeHead(400, { 'content-type': 'text/plain' }).end(`bad AuthnRequest: ${err.message}`),
    );
  });

  return {
    entityId,
    ssoUrl,
    metadataUrl: entityId,
    certificate: keys.spCertificate,
    metadataXml,
    respond,
    async listen(spMetadataXml, user) {
      browserLogin = { spMetadataXml, user };
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function attributeStatement(attributes: Record<string, string | string[]>): string {
  const attrs = Object.entries(attributes)
    .map(
      ([name, v]) =>
        `<saml:Attribute Name="${escapeXml(name)}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:basic">${[v]
          .flat()
          .map((x) => `<saml:AttributeValue xsi:type="xs:string">${escapeXml(x)}</saml:AttributeValue>`)
          .join('')}</saml:Attribute>`,
    )
    .join('');
  return attrs ? `<saml:AttributeStatement>${attrs}</saml:AttributeStatement>` : '';
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
