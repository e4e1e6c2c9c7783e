import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_AMI_ID, type Ec2Emulator } from '../../../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../src/db/migrate.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { frozenClock, startTestEmulator, TEST_ACCESS_KEY, TEST_SECRET } from '../../../../test/support/ec2.ts';

const SECRET_KEY = Buffer.alloc(32, 9).toString('base64');

async function counts(b: TestBroker) {
  return rowsOf<{ p: number; w: number }>(await b.database.db.execute(sql`select (select count(*) from providers)::int as p, (select count(*) from workstations)::int as w`))[0]!;
}

describe('providers and workstations API', () => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let admin: Session;
  let aws: string;
  const awsBody = () => ({ kind: 'aws-ec2', name: 'aws', region: 'us-east-1', endpoint: emu.url, credentials: { mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, secretAccessKey: TEST_SECRET } });

  beforeAll(async () => {
    emu = await startTestEmulator({ clock: frozenClock() }); // time moves by advanceTime only
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: SECRET_KEY } });
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/providers', headers: as(admin), payload: awsBody() });
    expect(res.statusCode).toBe(201);
    aws = res.json().id;
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  describe('secrets', () => {
    it('stores the secret access key encrypted, and never returns or logs it', async () => {
      const raw = rowsOf<{ secret_ciphertext: string; access_key_id: string }>(await b.database.db.execute(sql`select * from providers where id = ${aws}`))[0]!;
      expect(raw.access_key_id).toBe(TEST_ACCESS_KEY);
      expect(raw.secret_ciphertext).toMatch(/^v2:[0-9a-f]{16}:/);
      expect(raw.secret_ciphertext).not.toContain(TEST_SECRET);
      expect(JSON.stringify(raw)).not.toContain(TEST_SECRET);
      const responses = await Promise.all([
        b.app.inject({ url: '/api/v1/providers', headers: as(admin) }),
        b.app.inject({ url: `/api/v1/providers/${aws}`, headers: as(admin) }),
        b.app.inject({ method: 'PATCH', url: `/api/v1/providers/${aws}`, headers: as(admin), payload: { syncIntervalSeconds: 120 } }),
        b.app.inject({ url: '/api/v1/audit?limit=200', headers: as(admin) }),
      ]);
      for (const r of responses) {
        expect(r.statusCode).toBe(200);
        expect(r.body).not.toContain(TEST_SECRET);
      }
      expect(responses[1]!.json().credentials).toEqual({ mode: 'access-key', accessKeyId: TEST_ACCESS_KEY, hasSecret: true });
      expect(b.logLines.join('\n')).not.toContain(TEST_SECRET);
    });

    it('the provider works with the decrypted secret: test connection', async () => {
      const res = await b.app.inject({ method: 'POST', url: `/api/v1/providers/${aws}/test`, headers: as(admin) });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ ok: true, message: expect.stringContaining('availability zones') });
    });

    it('without STAGEDOOR_SECRET_KEY, a provider with a secret is refused naming the variable, and nothing is created', async () => {
      const nokey = await createTestBroker('pglite');
      try {
        const s = await login(nokey.app, 'admin', ADMIN_PASSWORD);
        const res = await nokey.app.inject({ method: 'POST', url: '/api/v1/providers', headers: as(s), payload: { ...awsBody(), name: 'nokey' } });
        expect(res.statusCode).toBe(400);
        expect(res.json().error.message).toContain('STAGEDOOR_SECRET_KEY');
        expect(res.json().error.details.fields[0].path).toBe('STAGEDOOR_SECRET_KEY');
        expect((await counts(nokey)).p).toBe(0);
        // The default chain needs no secret, so it works without the key.
        const chain = await nokey.app.inject({ method: 'POST', url: '/api/v1/providers', headers: as(s), payload: { ...awsBody(), name: 'role', credentials: { mode: 'default-chain' } } });
        expect(chain.statusCode).toBe(201);
      } finally {
        await nokey.close();
      }
    });
  });

  describe('bad input gets a clear 4xx naming the field, and nothing is half-created', () => {
    it.each([
      ['an unknown region', { region: 'us-moon-1' }, /body\.region.*not an AWS region/],
      ['a malformed access key id', { credentials: { mode: 'access-key', accessKeyId: 'nope', secretAccessKey: TEST_SECRET } }, /body\.credentials\.accessKeyId/],
      ['an unknown field', { colour: 'red' }, /colour/],
      ['an unknown kind', { kind: 'azure' }, /body\.kind/],
      ['a bad endpoint', { endpoint: 'ftp://x' }, /body\.endpoint/],
    ])('%s', async (_name, patch, message) => {
      const before = await counts(b);
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/providers', headers: as(admin), payload: { ...awsBody(), name: `bad-${Math.random()}`, ...patch } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.message).toMatch(message);
      expect(await counts(b)).toEqual(before);
    });

    it.each([
      ['a malformed AMI id', { imageId: 'ami-12' }, 'imageId', 'must be an AMI id'],
      ['an AMI that does not exist', { imageId: 'ami-0000000000000000f' }, 'imageId', 'does not exist'],
      ['a subnet that does not exist', { imageId: DEMO_AMI_ID, subnetId: 'subnet-0fffffffffffffff0' }, 'subnetId', 'does not exist'],
      ['a security group that does not exist', { imageId: DEMO_AMI_ID, securityGroupIds: ['sg-0fffffffffffffff0'] }, 'securityGroupIds', 'does not exist'],
    ])('launching with %s', async (_name, spec, field, message) => {
      const before = await counts(b);
      const calls = emu.control.callCounts().byAction.RunInstances ?? 0;
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/workstations', headers: as(admin), payload: { providerId: aws, name: 'one-off', instanceType: 't3.large', ...spec } });
      expect(res.statusCode).toBe(400);
      expect(JSON.stringify(res.json().error.details.fields)).toContain(field);
      expect(res.json().error.message).toContain(message);
      expect(await counts(b)).toEqual(before);
      expect(emu.control.callCounts().byAction.RunInstances ?? 0).toBe(calls);
    });

    it('a launch the cloud refuses leaves no row behind and answers 502 with the cloud\'s message', async () => {
      emu.control.setCapacity([{ availabilityZone: 'us-east-1a', max: 0 }, { availabilityZone: 'us-east-1b', max: 0 }, { availabilityZone: 'us-east-1c', max: 0 }]);
      try {
        const before = await counts(b);
        const res = await b.app.inject({ method: 'POST', url: '/api/v1/workstations', headers: as(admin), payload: { providerId: aws, name: 'no-room', imageId: DEMO_AMI_ID } });
        expect(res.statusCode).toBe(502);
        expect(res.json().error).toMatchObject({ code: 'provider_capacity', message: expect.stringContaining('InsufficientInstanceCapacity') });
        expect(await counts(b)).toEqual(before);
      } finally {
        emu.control.setCapacity([]);
      }
    });
  });

  describe('workstations', () => {
    let wsId: string;
    it('launches one machine by hand, then lists and filters it', async () => {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/workstations', headers: as(admin), payload: { providerId: aws, name: 'colour-01', imageId: DEMO_AMI_ID, instanceType: 'g5.4xlarge', tags: { team: 'colour' } } });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ name: 'colour-01', powerState: 'pending', instanceType: 'g5.4xlarge', tags: { team: 'colour', 'stagedoor:managed': 'true' } });
      wsId = res.json().id;
      const list = await b.app.inject({ url: '/api/v1/workstations?tag=team=colour&powerState=pending', headers: as(admin) });
      expect(list.json()).toMatchObject({ total: 1, items: [{ id: wsId }] });
      expect((await b.app.inject({ url: '/api/v1/workstations?q=colour&limit=1&offset=1', headers: as(admin) })).json().items).toHaveLength(0);
    });

    it('stop → stopped; start; reboot; terminate — each audited, state as the provider says', async () => {
      emu.control.advanceTime(10_000);
      await b.services.providers.syncNow({ ...(await import('../../src/domain/identity/actor.ts')).systemActor }, aws);
      const stop = await b.app.inject({ method: 'POST', url: `/api/v1/workstations/${wsId}/stop`, headers: as(admin), payload: { hibernate: false } });
      expect(stop.statusCode).toBe(200);
      expect(stop.json()).toMatchObject({ previous: 'running', current: 'stopping', workstation: { powerState: 'stopping' } });
      emu.control.advanceTime(10_000);
      const start = await b.app.inject({ method: 'POST', url: `/api/v1/workstations/${wsId}/start`, headers: as(admin) });
      expect(start.json()).toMatchObject({ previous: 'stopping', current: 'pending' });
      emu.control.advanceTime(10_000);
      expect((await b.app.inject({ method: 'POST', url: `/api/v1/workstations/${wsId}/reboot`, headers: as(admin) })).statusCode).toBe(200);
      const term = await b.app.inject({ method: 'POST', url: `/api/v1/workstations/${wsId}/terminate`, headers: as(admin) });
      expect(term.json()).toMatchObject({ current: 'terminated' });
      const trail = await b.services.audit.list({ action: 'workstation.*', targetId: wsId }, 20, 0);
      expect(trail.items.map((a) => a.action).sort()).toEqual(['workstation.launch', 'workstation.reboot', 'workstation.start', 'workstation.stop', 'workstation.terminate']);
    });

    it('a provider failure on a power action is a 4xx or 502 with the provider\'s message, and audited', async () => {
      const res = await b.app.inject({ method: 'POST', url: `/api/v1/workstations/${wsId}/stop`, headers: as(admin) });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatchObject({ code: 'provider_invalid', message: expect.stringContaining('IncorrectInstanceState') });
      emu.control.refuseAccessKey(TEST_ACCESS_KEY);
      const refused = await b.app.inject({ method: 'POST', url: `/api/v1/workstations/${wsId}/start`, headers: as(admin) });
      emu.control.allowAccessKey(TEST_ACCESS_KEY);
      expect(refused.statusCode).toBe(502);
      expect(refused.json().error.code).toBe('provider_auth');
      const failures = await b.services.audit.list({ action: 'workstation.*', targetId: wsId, outcome: 'failure' }, 10, 0);
      expect(failures.total).toBe(2);
    });
  });

  describe('static provider', () => {
    let racks: string;
    beforeAll(async () => {
      const res = await b.app.inject({ method: 'POST', url: '/api/v1/providers', headers: as(admin), payload: { kind: 'static', name: 'racks' } });
      expect(res.statusCode).toBe(201);
      racks = res.json().id;
    });

    it('registers a host by API, running, with its protocols', async () => {
      const res = await b.app.inject({ method: 'POST', url: `/api/v1/providers/${racks}/hosts`, headers: as(admin), payload: { name: 'avid-01', address: '10.1.2.3', protocols: [{ protocol: 'rdp' }, { protocol: 'ssh', port: 2222 }], tags: { site: 'soho' } } });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ name: 'avid-01', privateAddress: '10.1.2.3', powerState: 'running', protocols: [{ protocol: 'rdp' }, { protocol: 'ssh', port: 2222 }] });
      expect((await b.app.inject({ method: 'POST', url: `/api/v1/providers/${racks}/hosts`, headers: as(admin), payload: { name: 'avid-01', address: '10.1.2.4' } })).statusCode).toBe(409);
    });

    it('imports hosts from CSV; with onExisting=update known names are updated', async () => {
      const csv = 'name,address,protocols,tags\navid-01,10.1.2.30,rdp,site=soho\navid-02,10.1.2.31,rdp;ssh:2222,site=soho;team=edit\n"nuke, 03",10.1.2.32,vnc,\n';
      const res = await b.app.inject({ method: 'POST', url: `/api/v1/providers/${racks}/hosts/import`, headers: as(admin), payload: { csv, onExisting: 'update' } });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ created: 2, updated: 1, unchanged: 0, names: { created: ['avid-02', 'nuke, 03'], updated: ['avid-01'], unchanged: [] } });
      const list = (await b.app.inject({ url: `/api/v1/workstations?providerId=${racks}`, headers: as(admin) })).json();
      expect(list.items.map((w: { name: string; privateAddress: string }) => `${w.name}@${w.privateAddress}`)).toEqual(['avid-01@10.1.2.30', 'avid-02@10.1.2.31', 'nuke, 03@10.1.2.32']);
    });

    it('a CSV with a bad line imports nothing and names the line and field', async () => {
      const before = await counts(b);
      const csv = 'name,address,protocols\ngood-1,10.9.9.1,rdp\nbad-1,not_an_ip,rdp\nbad-2,10.9.9.3,telnet\n';
      const res = await b.app.inject({ method: 'POST', url: `/api/v1/providers/${racks}/hosts/import`, headers: as(admin), payload: { csv } });
      expect(res.statusCode).toBe(400);
      const paths = res.json().error.details.fields.map((f: { path: string }) => f.path);
      expect(paths).toEqual(['csv line 3: address', 'csv line 4: protocols.0.protocol']);
      expect(await counts(b)).toEqual(before);
    });

    it('power actions answer clearly that a static provider cannot do them', async () => {
      const host = (await b.app.inject({ url: `/api/v1/workstations?providerId=${racks}&q=avid-02`, headers: as(admin) })).json().items[0];
      for (const action of ['start', 'stop', 'reboot', 'terminate']) {
        const res = await b.app.inject({ method: 'POST', url: `/api/v1/workstations/${host.id}/${action}`, headers: as(admin) });
        expect(res.statusCode).toBe(409);
        expect(res.json().error).toMatchObject({ code: 'provider_unsupported', message: expect.stringContaining('static provider "racks" cannot') });
      }
    });

    it('a provider with machines cannot be deleted; an empty one can', async () => {
      expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/providers/${racks}`, headers: as(admin) })).statusCode).toBe(409);
      const empty = await b.app.inject({ method: 'POST', url: '/api/v1/providers', headers: as(admin), payload: { kind: 'static', name: 'spare' } });
      expect((await b.app.inject({ method: 'DELETE', url: `/api/v1/providers/${empty.json().id}`, headers: as(admin) })).statusCode).toBe(204);
    });
  });

  it('operators run workstations but cannot change providers; auditors only read', async () => {
    for (const role of ['operator', 'auditor'] as const) {
      await b.app.inject({ method: 'POST', url: '/api/v1/users', headers: as(admin), payload: { username: `${role}-p`, password: `password-${role}`, role } });
    }
    const op = await login(b.app, 'operator-p', 'password-operator');
    const au = await login(b.app, 'auditor-p', 'password-auditor');
    expect((await b.app.inject({ url: '/api/v1/providers', headers: as(op) })).statusCode).toBe(200);
    expect((await b.app.inject({ method: 'PATCH', url: `/api/v1/providers/${aws}`, headers: as(op), payload: { enabled: false } })).statusCode).toBe(403);
    expect((await b.app.inject({ method: 'POST', url: `/api/v1/providers/${aws}/sync`, headers: as(op) })).statusCode).toBe(200);
    expect((await b.app.inject({ url: '/api/v1/workstations', headers: as(au) })).statusCode).toBe(200);
    expect((await b.app.inject({ method: 'POST', url: `/api/v1/providers/${aws}/sync`, headers: as(au) })).statusCode).toBe(403);
  });
});
