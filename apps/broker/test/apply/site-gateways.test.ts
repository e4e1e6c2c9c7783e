import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemActor } from '../../src/domain/identity/actor.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { readSiteFile } from '../../../cli/src/actions/apply.ts';
import { REPO_ROOT } from '../../../../test/support/processes.ts';
import { fakeChannel } from '../gateways/fixtures.ts';

const EXAMPLE = path.join(REPO_ROOT, 'docs/examples/gateways.yaml');

/** `stagedoor apply` with a `gateways:` section (ADR 0031): the routed settings of enrolled gateways. */
describe.each(DRIVERS)('stagedoor apply: gateways [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  const apply = (document: unknown, dryRun = false) => b.app.inject({ method: 'POST', url: '/api/v1/apply', headers: as(admin), payload: { document, dryRun } });
  const doc = () => readSiteFile(EXAMPLE) as { gateways: Record<string, unknown>[] } & Record<string, unknown>;
  const gateways = async () => {
    const res = await b.app.inject({ method: 'GET', url: '/api/v1/gateways?limit=500', headers: as(admin) });
    return Object.fromEntries((res.json().items as { name: string; routedPorts: unknown; routedPortsSet: boolean; sniDomain: string | null }[]).map((g) => [g.name, { routedPorts: g.routedPorts, routedPortsSet: g.routedPortsSet, sniDomain: g.sniDomain }]));
  };
  const enrol = async (cluster: string, name: string) => {
    const { token } = await b.services.gateways.createEnrollment(systemActor, { cluster, name, publicAddress: `${name}.example.test`, expiresInMinutes: 5 });
    return (await b.services.gateways.enroll({ token, name, portRangeStart: 24000, portRangeEnd: 24009 }, null)).gateway;
  };

  beforeAll(async () => {
    b = await createTestBroker(driver);
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
  });
  afterAll(async () => {
    b?.services.gateways.channels.close();
    await b?.close();
  });

  it('an entry that matches no enrolled gateway is a problem at its path (apply never enrols), and nothing changes', async () => {
    const res = await apply(doc(), true);
    expect(res.statusCode).toBe(400);
    expect(res.json().error.details.fields).toEqual([
      { path: 'gateways[0].cluster', message: 'no gateway is enrolled in cluster "edge": enrol one (stagedoor gateway --enroll), then apply' },
      { path: 'gateways[1].name', message: 'no gateway named "soho-gw": enrol it (stagedoor gateway --enroll), then apply' },
    ]);
  });

  it('the documented example (docs/examples/gateways.yaml) sets every gateway of the cluster and the named one; a dry run writes nothing; a second apply changes nothing', async () => {
    const a = await enrol('edge', 'edge-a');
    await enrol('edge', 'edge-b');
    await enrol('other', 'other-1');
    const soho = await enrol('soho', 'soho-gw');
    // soho-gw reported its listeners: until the file names the public ports, clients get those.
    const ch = fakeChannel(b, soho);
    await ch.hello([], { sshHostKey: null, tlsCertificateSha256: null, listeners: { rdp: 3390, ssh: 2200, tls: null, tunnel: 8444 } });
    const before = await gateways();
    expect(before['soho-gw']).toEqual({ routedPorts: { rdp: 3390, ssh: 2200, tls: 8443, tunnel: 8444 }, routedPortsSet: false, sniDomain: null });

    const dry = await apply(doc(), true);
    expect(dry.statusCode, dry.body).toBe(200);
    expect(dry.json().changes).toEqual([
      { kind: 'gateway-cluster', name: 'cluster edge', action: 'update', fields: ['routedPorts', 'sniDomain'] },
      { kind: 'gateway', name: 'soho-gw', action: 'update', fields: ['routedPorts'] },
    ]);
    expect(await gateways()).toEqual(before);

    const res = await apply(doc());
    expect(res.statusCode, res.body).toBe(200);
    const after = await gateways();
    for (const name of ['edge-a', 'edge-b']) expect(after[name]).toEqual({ routedPorts: { rdp: 3389, ssh: 22, tls: 8443, tunnel: 443 }, routedPortsSet: true, sniDomain: 'gw.example.com' });
    // Ports the file leaves out keep what clients dial now (the listeners), and are the admin's from now on.
    expect(after['soho-gw']).toEqual({ routedPorts: { rdp: 3390, ssh: 2222, tls: 8443, tunnel: 8444 }, routedPortsSet: true, sniDomain: null });
    expect(after['other-1']).toEqual(before['other-1']);
    const audit = await b.services.audit.list({ action: 'gateway.update', targetId: a.id }, 10, 0);
    expect(audit.items).toHaveLength(1);

    expect((await apply(doc())).json().summary).toMatchObject({ create: 0, update: 0, unchanged: 2 });
    ch.close();
  });

  it('bad entries are refused at their path: both cluster and name, a port out of range, a bad domain, one gateway twice', async () => {
    const before = await gateways();
    for (const [entries, want] of [
      [[{ cluster: 'edge', name: 'edge-a', sniDomain: null }], /gateways\.0\.cluster/],
      [[{ sniDomain: null }], /gateways\.0\.cluster/],
      [[{ cluster: 'edge', routedPorts: { ssh: 70000 } }], /gateways\.0\.routedPorts\.ssh/],
      [[{ name: 'edge-a', sniDomain: 'no_dots' }], /gateways\.0\.sniDomain/],
      [[{ name: 'edge-a', sniDomain: null }, { name: 'EDGE-A', sniDomain: null }], /gateways\.1\.name/],
      [[{ cluster: 'edge', status: 'draining' }], /gateways\.0/],
    ] as const) {
      const res = await apply({ version: 1, gateways: entries });
      expect(res.statusCode, JSON.stringify(entries)).toBe(400);
      expect(JSON.stringify(res.json().error.details.fields.map((f: { path: string }) => f.path))).toMatch(want);
    }
    expect(await gateways()).toEqual(before);
  });
});
