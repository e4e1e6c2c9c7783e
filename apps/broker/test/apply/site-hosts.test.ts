import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../../src/db/migrate.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type Session, type TestBroker } from '../../../../test/support/broker.ts';
import { DRIVERS } from '../../../../test/support/database.ts';
import { readSiteFile } from '../../../cli/src/actions/apply.ts';
import { REPO_ROOT } from '../../../../test/support/processes.ts';

const EXAMPLE = path.join(REPO_ROOT, 'docs/examples/on-prem.yaml');

describe.each(DRIVERS)('stagedoor apply: static hosts [%s]', (driver) => {
  let b: TestBroker;
  let admin: Session;
  const apply = (document: unknown, dryRun = false) => b.app.inject({ method: 'POST', url: '/api/v1/apply', headers: as(admin), payload: { document, dryRun } });
  const hosts = async () =>
    rowsOf<{ name: string; dns_name: string | null; address: string | null; maintenance: boolean; pool: string | null }>(
      await b.database.db.execute(sql`select w.name, w.dns_name, host(w.private_address) as address, w.maintenance, p.name as pool from workstations w left join pools p on p.id = w.pool_id order by w.name`),
    );
  const doc = () => readSiteFile(EXAMPLE) as { hosts: Record<string, unknown>[] } & Record<string, unknown>;

  beforeAll(async () => {
    b = await createTestBroker(driver);
    admin = await login(b.app, 'admin', ADMIN_PASSWORD);
  });
  afterAll(async () => b?.close());

  it('the documented example (docs/examples/on-prem.yaml) creates its hosts, by DNS name and by IP, into the pool', async () => {
    const dry = await apply(doc(), true);
    expect(dry.statusCode, dry.body).toBe(200);
    expect(await hosts()).toEqual([]);
    const res = await apply(doc());
    expect(res.statusCode, res.body).toBe(200);
    const made = res.json().changes.filter((c: { kind: string }) => c.kind === 'host').map((c: { name: string; action: string }) => `${c.action} ${c.name}`);
    expect(made).toEqual(['create soho-racks/grade-01', 'create soho-racks/grade-02']);
    expect(await hosts()).toEqual([
      { name: 'grade-01', dns_name: 'localhost', address: null, maintenance: false, pool: 'grading' },
      { name: 'grade-02', dns_name: null, address: '127.0.0.2', maintenance: true, pool: 'grading' },
    ]);
  });

  it('a second apply changes nothing; an edited host is updated with the fields that changed', async () => {
    const again = await apply(doc());
    expect(again.json().summary).toMatchObject({ create: 0, update: 0 });
    const edited = doc();
    edited.hosts[0] = { ...edited.hosts[0], address: 'grade-01.studio.lan', tags: { suite: 'grading', floor: '2' } };
    const res = await apply(edited);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().changes.filter((c: { action: string }) => c.action !== 'unchanged')).toEqual([{ kind: 'host', name: 'soho-racks/grade-01', action: 'update', fields: ['address', 'tags'] }]);
    expect((await hosts())[0]).toMatchObject({ dns_name: 'grade-01.studio.lan', address: null });
  });

  it('maintenance left out of the file keeps the console\'s switch; named, it is applied', async () => {
    const ws = (await hosts()).find((h) => h.name === 'grade-01')!;
    expect(ws.maintenance).toBe(false);
    await b.database.db.execute(sql`update workstations set maintenance = true where name = 'grade-01'`);
    const edited = doc();
    edited.hosts[0] = { ...edited.hosts[0], address: 'grade-01.studio.lan', tags: { suite: 'grading', floor: '2' } };
    expect((await apply(edited)).json().summary).toMatchObject({ update: 0 });
    expect((await hosts()).find((h) => h.name === 'grade-01')!.maintenance).toBe(true);
    edited.hosts[0] = { ...edited.hosts[0], maintenance: false };
    const res = await apply(edited);
    expect(res.json().changes.find((c: { name: string }) => c.name === 'soho-racks/grade-01')).toMatchObject({ action: 'update', fields: ['maintenance'] });
    expect((await hosts()).find((h) => h.name === 'grade-01')!.maintenance).toBe(false);
  });

  it('bad hosts are reported by path and nothing is changed', async () => {
    const before = await hosts();
    const bad = doc();
    bad.hosts = [
      { name: 'x-1', provider: 'soho-racks', address: 'not a host' },
      { name: 'x-2', provider: 'nowhere', address: '10.0.0.1' },
      { name: 'x-3', provider: 'soho-racks', address: '10.0.0.3' },
    ];
    const res = await apply(bad);
    expect(res.statusCode).toBe(400);
    const paths = res.json().error.details.fields.map((f: { path: string }) => f.path);
    expect(paths).toEqual(expect.arrayContaining([expect.stringMatching(/hosts\.0\.address|hosts\[0\]\.address/)]));
    expect(await hosts()).toEqual(before);
    const unknown = doc();
    unknown.hosts = [{ name: 'x-2', provider: 'nowhere', address: '10.0.0.1' }];
    const r2 = await apply(unknown);
    expect(r2.statusCode).toBe(400);
    expect(r2.json().error.details.fields).toEqual([{ path: 'hosts[0].provider', message: 'no provider named "nowhere" in the file or the database' }]);
    const twice = doc();
    twice.hosts = [twice.hosts[0]!, twice.hosts[0]!];
    expect((await apply(twice)).statusCode).toBe(400);
    expect(await hosts()).toEqual(before);
  });
});
