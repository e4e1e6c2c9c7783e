import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { systemActor } from '../../broker/src/domain/identity/actor.ts';
import { connectionRow, insertConnection } from '../../broker/test/gateways/fixtures.ts';
import { createTestBroker, type TestBroker } from '../../../test/support/broker.ts';
import type { Driver } from '../../../test/support/database.ts';
import { freePortRange, waitFor } from '../../../test/support/ports.ts';
import { AddressList } from '../src/addresses.ts';
import { enroll } from '../src/enroll.ts';
import { Gateway } from '../src/gateway.ts';
import { createLog, type LogLevel } from '../src/log.ts';
import type { RelayEngineChoice } from '../src/native-relay.ts';

/** Both byte movers run the relay tests: the native relay (built at install) and the JavaScript one. */
export const RELAY_ENGINES = ['native', 'js'] as const;

/** Broker settings for gateway tests: heartbeats every second, so health and reconciliation move fast. */
export const FAST_GATEWAY_ENV = { STAGEDOOR_GATEWAY_HEARTBEAT_SECONDS: '1', STAGEDOOR_GATEWAY_STALE_SECONDS: '5' };

export async function listeningBroker(driver: Driver = 'pglite', env: Record<string, string> = {}): Promise<TestBroker & { baseUrl: string }> {
  const broker = await createTestBroker(driver, { env: { ...FAST_GATEWAY_ENV, ...env } });
  await broker.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = broker.app.server.address() as AddressInfo;
  return Object.assign(broker, { baseUrl: `http://127.0.0.1:${port}` });
}

export interface GatewayUnderTest {
  gateway: Gateway;
  gatewayId: string;
  logs: string[];
}

/** Enrol a gateway with `broker` and start it in this process, listening on 127.0.0.1. */
export async function startTestGateway(
  broker: TestBroker,
  urls: string[],
  opts: { name?: string; cluster?: string; ports?: [number, number]; failClosedMs?: number; lingerMs?: number; proxy?: string[] | null; logLevel?: LogLevel; workers?: number; relay?: RelayEngineChoice } = {},
): Promise<GatewayUnderTest> {
  const cluster = opts.cluster ?? 'default';
  const name = opts.name ?? `gw-${randomBytes(3).toString('hex')}`;
  const [start, end] = opts.ports ?? (await freePortRange(40));
  const { token } = await broker.services.gateways.createEnrollment(systemActor, { cluster, name, publicAddress: '127.0.0.1', expiresInMinutes: 10 });
  const state = await enroll(urls, { token, name, portRangeStart: start, portRangeEnd: end, version: 'test' });
  const logs: string[] = [];
  const gateway = new Gateway({
    brokerUrls: urls,
    credential: state.credential,
    listenHost: '127.0.0.1',
    proxyProtocol: { enabled: Boolean(opts.proxy), sources: new AddressList(opts.proxy ?? []) },
    failClosedMs: opts.failClosedMs ?? 60_000,
    lingerMs: opts.lingerMs ?? 3000,
    connectTimeoutMs: 3000,
    log: createLog(opts.logLevel ?? 'debug', {}, (l) => void logs.push(l)),
    backoffMs: { min: 50, max: 500 },
    workers: opts.workers,
    relay: opts.relay ? { engine: opts.relay, threads: 1 } : undefined,
  }).start();
  await waitFor('the gateway to be welcomed', () => gateway.channel.connected, 30_000, 25);
  await waitFor('the gateway to be healthy', async () => (await broker.services.gateways.get(state.gatewayId)).health === 'healthy', 30_000, 25);
  return { gateway, gatewayId: state.gatewayId, logs };
}

/** A grant through the connect flow's entry point, on a fresh connection row. */
export async function grantFor(broker: TestBroker, target: { host: string; port: number }, opts: { client?: string; connectByMs?: number; cluster?: string } = {}) {
  const { connectionId } = await insertConnection(broker.database, { workstationAddress: target.host, clientAddress: opts.client ?? '127.0.0.1' });
  const grant = await broker.services.gateways.issueGrant({
    connectionId,
    cluster: opts.cluster ?? 'default',
    clientAddress: opts.client ?? '127.0.0.1',
    targetAddress: target.host,
    targetPort: target.port,
    connectBy: new Date(Date.now() + (opts.connectByMs ?? 60_000)),
  });
  return { ...grant, connectionId };
}

/** An echo server that half-closes after its input ends (allowHalfOpen), like a well-behaved peer. */
export async function echoServer(): Promise<{ port: number; close(): Promise<void>; connections: number }> {
  const state = { connections: 0 };
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    state.connections++;
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((r) => server.close(() => r())),
    get connections() {
      return state.connections;
    },
  };
}

export type Outcome = { ok: true; data: Buffer } | { ok: false; error: string };

/** Connect, send `payload`, half-close, read until the far end closes. Resolves with what came back or the error. */
export function roundTrip(port: number, payload: Buffer, opts: { localAddress?: string; timeoutMs?: number; hold?: boolean } = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const s = net.connect({ port, host: '127.0.0.1', localAddress: opts.localAddress, allowHalfOpen: true });
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ ok: false, error: 'timeout' });
    }, opts.timeoutMs ?? 10_000);
    s.on('connect', () => {
      s.write(payload);
      if (!opts.hold) s.end();
    });
    s.on('data', (c) => chunks.push(c));
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ ok: false, error: err.code ?? err.message });
    });
    s.on('end', () => {
      clearTimeout(timer);
      s.end();
      resolve({ ok: true, data: Buffer.concat(chunks) });
    });
  });
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A session through the grant's port that has echoed once and that the broker records as
 * connected; `closed` resolves when the gateway ends it.
 */
export async function liveSession(broker: TestBroker, grant: { port: number; connectionId: string }, waitMs = 5000): Promise<{ socket: net.Socket; closed: Promise<void> }> {
  const socket = net.connect({ port: grant.port, host: '127.0.0.1' });
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('connect', r));
  socket.write('ping');
  await new Promise((r) => socket.once('data', r));
  await waitFor('the session to be recorded', async () => (await connectionRow(broker.database, grant.connectionId)).state === 'connected', waitMs, 25);
  return { socket, closed };
}
