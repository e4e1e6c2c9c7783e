import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_PASSWORD, as, createTestBroker, login, type TestBroker } from '../support/broker.ts';
import { freePort, waitFor } from '../support/ports.ts';
import { jsonLines, spawnStagedoor, type Spawned } from '../support/processes.ts';

/**
 * Issue 16 point 11: `stagedoor gateway` logs under the name the broker knows it by (the admin's
 * enrolment record), not its host name, and its start line names the relay engine in use.
 */
describe('stagedoor gateway: the start line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-gw-log-'));
  let b: TestBroker;
  let gateway: Spawned | undefined;

  beforeAll(async () => {
    b = await createTestBroker('pglite');
    await b.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await gateway?.stop('SIGTERM');
    await b?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('carries the enrolled name (and the proposed one), and says which relay engine moves the bytes', async () => {
    const admin = await login(b.app, 'admin', ADMIN_PASSWORD);
    const res = await b.app.inject({ method: 'POST', url: '/api/v1/gateways/enrollments', headers: as(admin), payload: { cluster: 'default', name: 'edge-enrolled', publicAddress: '127.0.0.1' } });
    expect(res.statusCode).toBe(201);
    // Port 0's pick lies in the kernel's ephemeral range: the start warns about that range.
    const port = await freePort();
    const { port: brokerPort } = b.app.server.address() as { port: number };
    gateway = spawnStagedoor(['gateway', '--enroll', res.json().token as string], {
      STAGEDOOR_BROKER_URLS: `http://127.0.0.1:${brokerPort}`,
      STAGEDOOR_GATEWAY_ALLOW_INSECURE_BROKER: 'true',
      STAGEDOOR_GATEWAY_NAME: 'host-proposed',
      STAGEDOOR_GATEWAY_PORTS: `${port}-${port}`,
      STAGEDOOR_GATEWAY_LISTEN_HOST: '127.0.0.1',
      STAGEDOOR_GATEWAY_RDP_PORT: 'off',
      STAGEDOOR_GATEWAY_SSH_PORT: 'off',
      STAGEDOOR_GATEWAY_TLS_PORT: 'off',
      STAGEDOOR_GATEWAY_HTTPS_PORT: 'off',
      STAGEDOOR_GATEWAY_RELAY: 'js',
      STAGEDOOR_GATEWAY_DATA_DIR: path.join(dir, 'gateway'),
      STAGEDOOR_LOG_LEVEL: 'info',
    });
    const started = () => jsonLines(gateway!.stdout).find((l) => String(l.msg).startsWith('gateway started'));
    await waitFor('the gateway\'s start line', () => started() !== undefined, 60_000, 100).catch((err: Error) => {
      throw new Error(`${err.message}\n${gateway!.stdout.join('\n')}\n${gateway!.stderr.join('\n')}`);
    });
    expect(started()).toMatchObject({ role: 'gateway', name: 'edge-enrolled', proposedName: 'host-proposed', relayEngine: 'js', msg: 'gateway started: relay engine js' });
    // Every line after the enrolment answer carries the enrolled name.
    const lines = jsonLines(gateway.stdout);
    const enrolled = lines.findIndex((l) => String(l.msg).startsWith('enrolled with the broker'));
    expect(enrolled).toBeGreaterThanOrEqual(0);
    const after = lines.slice(enrolled + 1);
    expect(after.length).toBeGreaterThan(0);
    expect(after.filter((l) => l.name !== 'edge-enrolled')).toEqual([]);
    const warning = lines.find((l) => String(l.msg).includes("overlaps the kernel's ephemeral port range"));
    expect(warning).toMatchObject({ level: 40, msg: expect.stringContaining(`STAGEDOOR_GATEWAY_PORTS (${port}-${port})`) });
  });
});
