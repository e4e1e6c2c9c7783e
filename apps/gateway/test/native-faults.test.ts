import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectionRow } from '../../broker/test/gateways/fixtures.ts';
import type { TestBroker } from '../../../test/support/broker.ts';
import { waitFor } from '../../../test/support/ports.ts';
import { nativeInjectFaults, nativeStats } from '../src/native-relay.ts';
import type { PortForwarder } from '../src/port-forward.ts';
import { echoServer, grantFor, listeningBroker, liveSession, type GatewayUnderTest, startTestGateway } from './harness.ts';

/**
 * The native relay when the machine runs out: allocations and epoll_ctl calls made to fail through
 * the relay's test-only fault injection (`injectFaults`, docs/gateway.md "The native relay"). A
 * failure ends that one session and reports why; nothing on the path of a revocation or of a
 * session's end needs memory, so neither is ever lost.
 */
describe('native relay faults', () => {
  let broker: TestBroker & { baseUrl: string };
  let gw: GatewayUnderTest;
  let echo: Awaited<ReturnType<typeof echoServer>>;

  beforeAll(async () => {
    broker = await listeningBroker();
    gw = await startTestGateway(broker, [broker.baseUrl], { relay: 'native' });
    expect((gw.gateway.forwarder as PortForwarder).nativeRelay).toBe(true);
    echo = await echoServer();
  });
  afterEach(() => {
    nativeInjectFaults('alloc', 0, 0);
    nativeInjectFaults('epoll_ctl', 0, 0);
  });
  afterAll(async () => {
    gw?.gateway.stop();
    await echo?.close();
    await broker?.close();
  });

  async function grant() {
    const g = await grantFor(broker, { host: '127.0.0.1', port: echo.port });
    await waitFor('the gateway to hold the grant', () => gw.gateway.forwarder.isReady(g.grantId), 5000, 10);
    return g;
  }
  async function ended(connectionId: string): Promise<string | null> {
    await waitFor('the session end to be recorded', async () => (await connectionRow(broker.database, connectionId)).state === 'closed', 10_000, 25);
    return (await connectionRow(broker.database, connectionId)).endReason;
  }
  function dial(port: number): { socket: net.Socket; closed: Promise<void> } {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => undefined);
    return { socket, closed: new Promise((r) => socket.once('close', () => r())) };
  }
  async function relaysAgain() {
    const g = await grant();
    const { socket, closed } = await liveSession(broker, g, 8000);
    socket.end();
    await closed;
    expect(await ended(g.connectionId)).toBe('client-closed');
  }

  // First: the end queue's room is then reserved by this session's hand-off, not left over from others.
  it("a session's end reaches the broker even when the relay cannot allocate any memory", async () => {
    const g = await grant();
    const { socket, closed } = await liveSession(broker, g, 8000);
    nativeInjectFaults('alloc', 0, 1_000_000);
    socket.end();
    await closed;
    expect(await ended(g.connectionId)).toBe('client-closed');
    expect(nativeStats()?.live).toBe(0);
  });

  it('an epoll_ctl failure when the relay takes a session ends that session and reports it as a relay error', async () => {
    const g = await grant();
    nativeInjectFaults('epoll_ctl', 0, 1); // the relay thread's first epoll_ctl: registering the client side
    const { socket, closed } = dial(g.port);
    socket.write('ping');
    await closed;
    expect(await ended(g.connectionId)).toBe('relay-error: ENOSPC');
    const audit = await broker.services.audit.list({ action: 'gateway.session_end', targetId: g.grantId }, 5, 0);
    expect(audit.items[0]?.reason).toBe('relay-error: ENOSPC');
    await relaysAgain();
  });

  it('an epoll_ctl failure in the middle of a session ends that session and reports it as a relay error', async () => {
    const g = await grant();
    const { socket, closed } = await liveSession(broker, g, 8000);
    // The half-close below first registers the half-close timer (let through), then makes the relay
    // watch the client side differently (that one fails).
    nativeInjectFaults('epoll_ctl', 1, 1);
    socket.end();
    await closed;
    expect(await ended(g.connectionId)).toBe('relay-error: ENOSPC');
    await relaysAgain();
  });

  it('a half-close timer that cannot be registered leaves the session relaying (without the bound) to its own end', async () => {
    const g = await grant();
    const { socket, closed } = await liveSession(broker, g, 8000);
    nativeInjectFaults('epoll_ctl', 0, 1); // the client's FIN: the half-close timer's registration fails
    socket.end('last');
    expect(String(await new Promise<Buffer>((r) => socket.once('data', r)))).toBe('last'); // the echo still comes back
    await closed;
    expect(await ended(g.connectionId)).toBe('client-closed');
    await relaysAgain();
  });

  it('a revocation closes a native session even when the relay cannot allocate any memory', async () => {
    const g = await grant();
    const { closed } = await liveSession(broker, g, 8000);
    nativeInjectFaults('alloc', 0, 1_000_000);
    await broker.services.gateways.revokeGrant(g.grantId, 'out-of-memory test');
    await closed;
    expect(await ended(g.connectionId)).toBe('revoked: out-of-memory test');
    nativeInjectFaults('alloc', 0, 0);
    await relaysAgain();
  });

  it('an allocation failure when handing a session over keeps it relaying in JavaScript', async () => {
    const g = await grant();
    nativeInjectFaults('alloc', 0, 1); // the relay's first allocation: the session's own state
    const { socket, closed } = await liveSession(broker, g, 8000);
    expect(nativeStats()?.live).toBe(0); // not in the relay thread, and yet it answered
    socket.write('again');
    expect(String(await new Promise<Buffer>((r) => socket.once('data', r)))).toBe('again');
    socket.end();
    await closed;
    expect(await ended(g.connectionId)).toBe('client-closed');
  });
});
