import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase } from '../support/database.ts';
import { startBrokerNodes, type BrokerNode as Node } from '../support/broker-nodes.ts';
import { startTestIdp, type SamlUser, type Tamper, type TestIdp } from '../support/saml-idp.ts';

const ADMIN_PASSWORD = 'saml-nodes-admin-password';
/** Both nodes sit behind one address (the load balancer); the ACS URL is built from it, not from either node. */
const PUBLIC_URL = 'https://stagedoor.example.test';
const ANA: SamlUser = { nameId: 'ana@studio.example', attributes: { uid: 'ana' } };

/**
 * SAML replay protection lives in PostgreSQL, not in a node's memory: a response accepted by one
 * `stagedoor broker` process is refused by the other, two nodes handed the same response at once
 * accept it once, and an assertion id used on one node cannot sign in on the other.
 */
describe('SAML replay across two broker nodes sharing PostgreSQL', () => {
  const nodes: Node[] = [];
  let idp: TestIdp;
  let spMetadata: string;
  let adminAuth: Record<string, string>;

  /** One browser: the binding cookie of its latest start (the public URL is https, so the broker binds the request to it). */
  let binding = '';
  const start = async (node: Node) => {
    const res = await fetch(`${node.base}/api/v1/auth/saml/studio-idp/start`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    binding = res.headers.getSetCookie().find((c) => c.startsWith('stagedoor_saml='))!.split(';')[0]!;
    return res.headers.get('location')!;
  };
  const acsAt = async (node: Node, acs: string, SAMLResponse: string) => {
    const res = await fetch(`${node.base}${new URL(acs).pathname}`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: binding },
      body: new URLSearchParams({ SAMLResponse }).toString(),
    });
    return { status: res.status, body: await res.text() };
  };
  const respond = async (startedOn: Node, tamper?: Tamper) => idp.respond(await start(startedOn), spMetadata, ANA, tamper);

  beforeAll(async () => {
    idp = await startTestIdp();
    const url = await createPostgresDatabase();
    nodes.push(...(await startBrokerNodes(['node-a', 'node-b'], { DATABASE_URL: url, STAGEDOOR_ADMIN_PASSWORD: ADMIN_PASSWORD, STAGEDOOR_PUBLIC_URL: PUBLIC_URL, STAGEDOOR_LOG_LEVEL: 'warn' })));
    const login = await fetch(`${nodes[0]!.base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }) });
    const body = (await login.json()) as { csrfToken: string };
    adminAuth = { cookie: login.headers.getSetCookie()[0]!.split(';')[0]!, 'x-csrf-token': body.csrfToken, 'content-type': 'application/json' };
    const made = await fetch(`${nodes[0]!.base}/api/v1/auth-servers`, {
      method: 'POST',
      headers: adminAuth,
      body: JSON.stringify({ kind: 'saml', name: 'studio-idp', config: { idpEntityId: idp.entityId, idpSsoUrl: idp.ssoUrl, idpCertificates: [idp.certificate], usernameAttribute: 'uid' } }),
    });
    expect(made.status, await made.clone().text()).toBe(201);
    spMetadata = await (await fetch(`${nodes[1]!.base}/api/v1/auth-servers/studio-idp/saml/metadata`)).text();
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.proc.stop('SIGKILL')));
    await idp?.close();
  });

  it('replayed response: accepted on node A, refused on node B', async () => {
    const [a, b] = nodes as [Node, Node];
    const { acs, SAMLResponse } = await respond(a);
    expect((await acsAt(a, acs, SAMLResponse)).status).toBe(303);
    const replay = await acsAt(b, acs, SAMLResponse);
    expect(replay.status, replay.body).toBe(401);
    expect(replay.body).toContain('request id');
  });

  it('raced response: the same response posted to both nodes at once signs in exactly once', async () => {
    const [a, b] = nodes as [Node, Node];
    const { acs, SAMLResponse } = await respond(b);
    const answers = await Promise.all([acsAt(a, acs, SAMLResponse), acsAt(b, acs, SAMLResponse)]);
    expect(answers.map((x) => x.status).sort()).toEqual([303, 401]);
  });

  it('replayed assertion id: used on node A, refused under a fresh request on node B', async () => {
    const [a, b] = nodes as [Node, Node];
    const AssertionID = '_replayed-across-nodes';
    const first = await respond(a, { values: { AssertionID } });
    expect((await acsAt(a, first.acs, first.SAMLResponse)).status).toBe(303);
    const second = await respond(b, { values: { AssertionID } });
    const replay = await acsAt(b, second.acs, second.SAMLResponse);
    expect(replay.status, replay.body).toBe(401);
    expect(replay.body).toContain('assertion replayed');
    const audit = (await (await fetch(`${b.base}/api/v1/audit?action=auth.login&outcome=failure`, { headers: { cookie: adminAuth.cookie! } })).json()) as { items: { reason: string }[] };
    expect(audit.items.map((e) => e.reason)).toEqual(expect.arrayContaining([expect.stringContaining('assertion replayed'), expect.stringContaining('request id')]));
  });
});
