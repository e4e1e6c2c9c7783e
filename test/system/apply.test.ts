import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Ec2Emulator } from '../../packages/ec2-emulator/src/index.ts';
import { rowsOf } from '../../apps/broker/src/db/migrate.ts';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../support/broker.ts';
import { startTestEmulator } from '../support/ec2.ts';
import { REPO_ROOT, spawnStagedoor } from '../support/processes.ts';

const EXAMPLE = path.join(REPO_ROOT, 'docs/examples/studio.yaml');

/** `stagedoor apply -f` of the documented example, for real: the CLI process against a broker. */
describe('stagedoor apply -f docs/examples/studio.yaml', () => {
  let emu: Ec2Emulator;
  let b: TestBroker;
  let env: Record<string, string>;

  beforeAll(async () => {
    // The example's AMI, subnet and security group ids are the emulator's defaults for us-east-1.
    emu = await startTestEmulator();
    b = await createTestBroker('pglite', { env: { STAGEDOOR_SECRET_KEY: '12'.repeat(32) } });
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const token = (await b.app.inject({ method: 'POST', url: '/api/v1/me/tokens', headers: as(admin), payload: { name: 'apply' } })).json().token as string;
    const address = b.app.server.address() as { port: number };
    env = { STAGEDOOR_URL: `http://127.0.0.1:${address.port}`, STAGEDOOR_TOKEN: token, EC2_ENDPOINT: emu.url, AWS_ACCESS_KEY_ID: 'AKIASANDBOX000000000', AWS_SECRET_ACCESS_KEY: 'sandbox-secret-the-emulator-ignores' };
  });
  afterAll(async () => {
    await b?.close();
    await emu?.close();
  });

  const run = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const p = spawnStagedoor(['apply', ...args], { ...env, ...extraEnv });
    const code = await p.exited;
    return { code, out: p.stdout.join('\n'), err: p.stderr.join('\n') };
  };
  const counts = async () =>
    rowsOf<Record<string, number>>(
      await b.database.db.execute(sql`select (select count(*) from groups)::int as groups, (select count(*) from providers)::int as providers, (select count(*) from pools)::int as pools,
        (select count(*) from policies)::int as policies, (select count(*) from protocol_plans)::int as protocol_plans, (select count(*) from power_plans)::int as power_plans,
        (select count(*) from release_plans)::int as release_plans, (select count(*) from audit_events)::int as audit`),
    )[0]!;

  it('--dry-run prints the plan and changes nothing', async () => {
    const before = await counts();
    const r = await run(['-f', EXAMPLE, '--dry-run']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('+ create pool edit-gpu');
    expect(r.out).toContain('Plan: 11 to create, 0 to update, 0 unchanged.');
    expect(r.out).toContain('Dry run: nothing was changed.');
    expect(await counts()).toEqual(before);
  });

  it('on a fresh start yields a working studio', async () => {
    const r = await run(['-f', EXAMPLE]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('+ create policy editors');
    expect(r.out).toContain('Applied: 11 created, 0 updated.');
    expect(await counts()).toMatchObject({ groups: 2, providers: 1, pools: 2, policies: 2, protocol_plans: 2, power_plans: 1, release_plans: 1 });
    const policies = (await b.services.policies.list()).map((p) => [p.name, p.position, p.assignmentMode]);
    expect(policies).toEqual([['editors', 1, 'persistent'], ['assistants', 2, 'floating']]);
    const pool = await b.services.pools.findByName('edit-gpu');
    expect(pool).toMatchObject({ minAvailable: 1, maxTotal: 20 });
  });

  it('a second apply prints no changes', async () => {
    const before = await counts();
    const r = await run(['-f', EXAMPLE]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('Plan: 0 to create, 0 to update, 11 unchanged.');
    expect(r.out).toContain('No changes.');
    const after = await counts();
    expect({ ...after, audit: 0 }).toEqual({ ...before, audit: 0 });
  });

  it('a changed file updates only what changed', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-apply-'));
    const file = path.join(dir, 'site.yaml');
    fs.writeFileSync(file, fs.readFileSync(EXAMPLE, 'utf8').replace('    minAvailable: 2\n    maxAvailable: 4', '    minAvailable: 3\n    maxAvailable: 4'));
    const r = await run(['-f', file]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain('~ update pool assist-cpu: minAvailable');
    expect(r.out).toContain('Applied: 0 created, 1 updated.');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a broken file changes nothing and names every bad field', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-apply-'));
    const file = path.join(dir, 'broken.yaml');
    fs.writeFileSync(
      file,
      [
        'groups:',
        '  - name: Colorists',
        'pools:',
        '  - name: grade',
        '    provider: aws-main',
        '    minAvailable: -1',
        '    template: { imageId: ami-nope, instanceTypes: [g5.xlarge], subnetIds: [subnet-0aea809a51aa13a3d] }',
        'policies:',
        '  - name: colorists',
        '    groups: [Colorists]',
        '    pools: [{ pool: grade }]',
        '    assignmentMode: sometimes',
      ].join('\n'),
    );
    const before = await counts();
    const r = await run(['-f', file]);
    expect(r.code).not.toBe(0);
    expect(r.err).toContain('pools.0.minAvailable');
    expect(r.err).toContain('pools.0.template.imageId');
    expect(r.err).toContain('policies.0.assignmentMode');
    expect({ ...(await counts()), audit: 0 }).toEqual({ ...before, audit: 0 });

    // References that name nothing are reported too, each with its path, and nothing is created.
    fs.writeFileSync(file, ['groups:', '  - name: Colorists', 'policies:', '  - name: colorists', '    groups: [Colorists, Nobody]', '    pools: [{ pool: no-such-pool }]', '    powerPlan: missing'].join('\n'));
    const refs = await run(['-f', file]);
    expect(refs.code).not.toBe(0);
    expect(refs.err).toContain('policies[0].groups[1]: no group named "Nobody"');
    expect(refs.err).toContain('policies[0].pools[0].pool: no pool named "no-such-pool"');
    expect(refs.err).toContain('policies[0].powerPlan: no power plan named "missing"');
    expect((await counts()).groups).toBe(before.groups);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('names a missing environment variable and a YAML syntax error', async () => {
    const missing = await run(['-f', EXAMPLE], { EC2_ENDPOINT: '' });
    expect(missing.code).not.toBe(0);
    const noVar = spawnStagedoor(['apply', '-f', EXAMPLE], { ...env, EC2_ENDPOINT: undefined as unknown as string });
    expect(await noVar.exited).not.toBe(0);
    expect(noVar.stderr.join('\n')).toContain('EC2_ENDPOINT');
  });
});
