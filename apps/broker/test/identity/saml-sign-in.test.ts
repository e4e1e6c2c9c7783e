import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { ADMIN_PASSWORD, as, createTestBroker, login, sessionCookie, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { startTestIdp, type SamlUser, type Tamper, type TestIdp } from '../../../../test/support/saml-idp.ts';
import { create, SECRET_KEY } from './helpers.ts';

const PUBLIC_URL = 'https://stagedoor.example.test';
const ANA: SamlUser = { nameId: 'ana@studio.example', attributes: { uid: 'ana', displayName: 'Ana Artist', groups: ['VFX Artists', 'Everyone'] } };

/**
 * SAML sign-in against samlify as a real IdP (its own key pair, schema-validating our AuthnRequest):
 * the happy path end to end (JIT user, mapped groups, desktops), then one test per attack, each a
 * 401 with an audited reason and no session.
 */
describe.each(DRIVERS)('SAML 2.0 sign-in [%s]', (driver) => {
  let b: TestBroker;
  let idp: TestIdp;
  let admin: Session;
  let spMetadata: string;
  let serverId: string;

  const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
  const post = (acs: string, SAMLResponse: string, cookie?: string) =>
    b.app.inject({ method: 'POST', url: new URL(acs).pathname, headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) }, payload: form({ SAMLResponse }) });

  /** Our SP sends the browser to the IdP; the IdP answers (tampered as asked); the browser posts it to the ACS. */
  async function signIn(
    user: SamlUser = ANA,
    tamper?: Tamper,
    server = { name: 'studio-idp', metadata: () => spMetadata },
  ): Promise<{ res: LightMyRequestResponse; acs: string; SAMLResponse: string; location: string; binding: string }> {
    const start = await b.app.inject({ method: 'GET', url: `/api/v1/auth/saml/${server.name}/start?returnTo=/portal` });
    expect(start.statusCode, start.body).toBe(302);
    // The browser-binding cookie (the public URL is https): SameSite=None so the IdP's cross-site POST carries it.
    const c = start.cookies.find((x) => x.name === 'stagedoor_saml')!;
    expect(c).toMatchObject({ sameSite: 'None', secure: true, httpOnly: true, path: '/api/v1/auth/saml/' });
    const binding = `stagedoor_saml=${c.value}`;
    const location = start.headers.location as string;
    const { acs, SAMLResponse } = await idp.respond(location, server.metadata(), user, tamper);
    return { res: await post(acs, SAMLResponse, binding), acs, SAMLResponse, location, binding };
  }

  async function expectRefused(res: LightMyRequestResponse, reason: RegExp) {
    expect(res.statusCode, res.body).toBe(401);
    expect(res.json().error.code).toBe('sso_refused');
    expect(res.cookies.some((c) => c.name === 'stagedoor_session' && c.value)).toBe(false);
    const audit = await b.app.inject({ method: 'GET', url: '/api/v1/audit?action=auth.login&outcome=failure&limit=5', headers: as(admin) });
    expect(audit.json().items.map((e: { reason: string }) => e.reason)).toContainEqual(expect.stringMatching(reason));
  }

  beforeAll(async () => {
    idp = await startTestIdp();
    b = await createTestBroker(driver, { env: { STAGEDOOR_PUBLIC_URL: PUBLIC_URL, STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const artists = await create(b.app, admin, '/api/v1/groups', { name: 'artists' });
    // A desktop the artists group is entitled to: a static host in a pool, through a policy.
    const racks = await create(b.app, admin, '/api/v1/providers', { kind: 'static', name: 'racks' });
    await create(b.app, admin, `/api/v1/providers/${racks.id}/hosts`, { name: 'edit-01', address: '10.1.2.3' });
    const pool = await create(b.app, admin, '/api/v1/pools', { name: 'comp-suite', providerId: racks.id, membership: { externalIds: ['edit-01'] } });
    await create(b.app, admin, '/api/v1/policies', { name: 'artists', groupIds: [artists.id], pools: [{ poolId: pool.id }] });
    const imported = await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers/saml/idp-metadata', headers: as(admin), payload: { xml: idp.metadataXml } });
    expect(imported.statusCode, imported.body).toBe(200);
    expect(imported.json()).toMatchObject({ idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl });
    const server = await create(b.app, admin, '/api/v1/auth-servers', {
      kind: 'saml',
      name: 'studio-idp',
      config: { ...imported.json(), usernameAttribute: 'uid', displayNameAttribute: 'displayName', groupsAttribute: 'groups' },
      groupMappings: [{ externalGroup: 'VFX Artists', groupId: artists.id }],
    });
    serverId = server.id;
    const md = await b.app.inject({ method: 'GET', url: '/api/v1/auth-servers/studio-idp/saml/metadata' });
    expect(md.statusCode, md.body).toBe(200);
    expect(md.headers['content-type']).toContain('application/samlmetadata+xml');
    spMetadata = md.body;
  });
  afterAll(async () => {
    await b?.close();
    await idp?.close();
  });

  it('publishes SP metadata built from the public URL: entity id, ACS (HTTP-POST), signed assertions wanted', () => {
    expect(spMetadata).toContain(`entityID="${PUBLIC_URL}/api/v1/auth-servers/studio-idp/saml/metadata"`);
    expect(spMetadata).toContain(`Location="${PUBLIC_URL}/api/v1/auth/saml/studio-idp/acs"`);
    expect(spMetadata).toContain('WantAssertionsSigned="true"');
  });

  it('imports IdP metadata from its URL too; a URL that does not answer metadata is a 400 naming the field', async () => {
    const byUrl = await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers/saml/idp-metadata', headers: as(admin), payload: { url: idp.metadataUrl } });
    expect(byUrl.statusCode, byUrl.body).toBe(200);
    expect(byUrl.json()).toMatchObject({ idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpMetadataUrl: idp.metadataUrl });
    expect(byUrl.json().idpCertificates).toHaveLength(1);
    const notFound = await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers/saml/idp-metadata', headers: as(admin), payload: { url: `${new URL(idp.metadataUrl).origin}/nothing` } });
    expect(notFound.statusCode).toBe(400);
    expect(notFound.json().error.details.fields[0].path).toBe('url');
    const spInstead = await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers/saml/idp-metadata', headers: as(admin), payload: { xml: spMetadata } });
    expect(spInstead.statusCode).toBe(400);
    expect(spInstead.body).toContain('IDPSSODescriptor');
  });

  it('a signed assertion signs the user in: created just in time, groups mapped, desktops visible', async () => {
    const { res } = await signIn();
    expect(res.statusCode, res.body).toBe(303);
    expect(res.headers.location).toBe('/portal');
    const me = await b.app.inject({ method: 'GET', url: '/api/v1/me', headers: { cookie: sessionCookie(res) } });
    expect(me.json().user).toMatchObject({ username: 'ana', displayName: 'Ana Artist', authServerId: serverId });
    expect(me.json().user.groups.map((g: { name: string }) => g.name)).toEqual(['artists']);
    const desktops = await b.app.inject({ method: 'GET', url: '/api/v1/desktops', headers: { cookie: sessionCookie(res) } });
    expect(desktops.json().desktops.map((d: { name: string }) => d.name)).toEqual(['comp-suite']);
  });

  it('unsigned assertion (only the Response is signed) is refused', async () => {
    await expectRefused((await signIn(ANA, { unsignedAssertion: true })).res, /not signed/);
  });

  it('assertion with its signature stripped is refused', async () => {
    const strip = (xml: string) => xml.replace(/<ds:Signature[\s\S]*?<\/ds:Signature>/, '');
    await expectRefused((await signIn(ANA, { afterSigning: strip })).res, /not signed/);
  });

  it('assertion edited after signing (username swapped) is refused', async () => {
    const swap = (xml: string) => xml.replace('>ana<', '>admin<');
    await expectRefused((await signIn(ANA, { afterSigning: swap })).res, /not signed/);
  });

  it('assertion for another audience (another SP) is refused', async () => {
    await expectRefused((await signIn(ANA, { values: { Audience: 'https://other-sp.example/saml' } })).res, /wrong audience/);
  });

  it('expired assertion is refused', async () => {
    const past = new Date(Date.now() - 60 * 60_000);
    const values = { IssueInstant: past.toISOString(), ConditionsNotBefore: past.toISOString(), ConditionsNotOnOrAfter: new Date(past.getTime() + 5 * 60_000).toISOString(), SubjectConfirmationDataNotOnOrAfter: new Date(past.getTime() + 5 * 60_000).toISOString() };
    await expectRefused((await signIn(ANA, { values })).res, /expired or not yet valid/);
  });

  it('assertion addressed to another recipient (a different ACS) is refused', async () => {
    await expectRefused((await signIn(ANA, { values: { SubjectRecipient: 'https://evil.example/acs' } })).res, /wrong recipient/);
  });

  it('replayed response (the same POST again) is refused: its request id was spent', async () => {
    const first = await signIn();
    expect(first.res.statusCode, first.res.body).toBe(303);
    await expectRefused(await post(first.acs, first.SAMLResponse, first.binding), /request id/);
  });

  it('replayed assertion id under a fresh request is refused by the assertion key', async () => {
    const AssertionID = `_replayed-${driver}`;
    expect((await signIn(ANA, { values: { AssertionID } })).res.statusCode).toBe(303);
    await expectRefused((await signIn(ANA, { values: { AssertionID } })).res, /assertion replayed/);
  });

  it('unsolicited (IdP-initiated) response is refused: no request of ours to answer', async () => {
    await expectRefused((await signIn(ANA, { values: { InResponseTo: '' } })).res, /request id/);
  });

  it('login CSRF: a valid response for a sign-in started in another browser (no binding cookie, or another one) is refused', async () => {
    // The attacker starts sign-ins, signs in at the IdP as themself, and makes the victim's browser post the responses.
    const cookieOf = (r: LightMyRequestResponse) => `stagedoor_saml=${r.cookies.find((x) => x.name === 'stagedoor_saml')!.value}`;
    const attacker1 = await b.app.inject({ method: 'GET', url: '/api/v1/auth/saml/studio-idp/start' });
    const attacker2 = await b.app.inject({ method: 'GET', url: '/api/v1/auth/saml/studio-idp/start' });
    const victim = await b.app.inject({ method: 'GET', url: '/api/v1/auth/saml/studio-idp/start' });
    const first = await idp.respond(attacker1.headers.location as string, spMetadata, ANA);
    await expectRefused(await post(first.acs, first.SAMLResponse), /started in another browser/);
    const second = await idp.respond(attacker2.headers.location as string, spMetadata, ANA);
    await expectRefused(await post(second.acs, second.SAMLResponse, cookieOf(victim)), /started in another browser/);
  });

  it('a user of the same name from another auth server is never taken over', async () => {
    await create(b.app, admin, '/api/v1/users', { username: 'bruno', password: 'bruno-password' });
    const bruno: SamlUser = { nameId: 'bruno@studio.example', attributes: { uid: 'bruno' } };
    const { res } = await signIn(bruno);
    expect(res.statusCode, res.body).toBe(401);
    expect(res.json().error.code).toBe('sso_refused');
  });

  it('signed requests: the SP key pair is generated and sealed, its certificate published, and AuthnRequests carry a signature the IdP verifies', async () => {
    const signed = await create(b.app, admin, '/api/v1/auth-servers', {
      kind: 'saml',
      name: 'signed-idp',
      config: { idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificates: [idp.certificate], usernameAttribute: 'uid', signRequests: true },
    });
    expect(signed.secretSet).toBe(true);
    expect(JSON.stringify(signed)).not.toContain('PRIVATE KEY');
    const md = (await b.app.inject({ method: 'GET', url: '/api/v1/auth-servers/signed-idp/saml/metadata' })).body;
    expect(md).toContain('AuthnRequestsSigned="true"');
    expect(md).toMatch(/<(ds:)?X509Certificate>/);
    const carla: SamlUser = { nameId: 'carla@studio.example', attributes: { uid: 'carla' } };
    const { res, location } = await signIn(carla, undefined, { name: 'signed-idp', metadata: () => md });
    expect(new URL(location).searchParams.get('SigAlg')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    expect(new URL(location).searchParams.get('Signature')).toBeTruthy();
    expect(res.statusCode, res.body).toBe(303);
    // A request whose signature no longer matches is refused by the IdP: the signature is real.
    const forged = new URL(location);
    forged.searchParams.set('RelayState', 'changed');
    await expect(idp.respond(forged.toString(), md, carla)).rejects.toBeTruthy();
  });

  it('bad input is a 4xx, never a 500: garbage SAMLResponse, missing field, unknown server, JSON instead of a form', async () => {
    expect((await post(`${PUBLIC_URL}/api/v1/auth/saml/studio-idp/acs`, 'not base64 xml')).statusCode).toBe(401);
    const missing = await b.app.inject({ method: 'POST', url: '/api/v1/auth/saml/studio-idp/acs', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'RelayState=x' });
    expect(missing.statusCode).toBe(400);
    expect((await post(`${PUBLIC_URL}/api/v1/auth/saml/nobody/acs`, 'eA==')).statusCode).toBe(404);
    expect((await b.app.inject({ method: 'GET', url: '/api/v1/auth/saml/nobody/start' })).statusCode).toBe(404);
    const created = await b.app.inject({ method: 'POST', url: '/api/v1/auth-servers', headers: as(admin), payload: { kind: 'saml', name: 'no-signing', config: { idpEntityId: 'x', idpSsoUrl: 'https://idp.example/sso', idpCertificates: [idp.certificate], wantSignedAssertions: false } } });
    expect(created.statusCode).toBe(400);
    expect(created.body).toContain('cannot be switched off');
  });
});
