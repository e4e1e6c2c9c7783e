import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectionRow } from '../../broker/test/gateways/fixtures.ts';
import type { TestBroker } from '../../../test/support/broker.ts';
import { waitFor } from '../../../test/support/ports.ts';
import { DEFAULT_HALF_CLOSE_SECONDS, setHalfCloseSeconds } from '../src/native-relay.ts';
import { grantFor, listeningBroker, RELAY_ENGINES, startTestGateway, type GatewayUnderTest } from './harness.ts';

/** A workstation whose connections run `behave`; what each connection saw is kept. */
async function workstation(behave: (s: net.Socket) => void) {
  const seen: { ended: boolean; closed: boolean; socket: net.Socket }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    const state = { ended: false, closed: false, socket: s };
    seen.push(state);
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('end', () => (state.ended = true));
    s.on('close', () => ((state.closed = true), sockets.delete(s)));
    behave(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

/** A client on the grant's port that keeps its side open unless told otherwise; what it read, and whether the gateway closed it. */
async function client(port: number) {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  const got: Buffer[] = [];
  const state = { ended: false, closed: false, text: () => Buffer.concat(got).toString() };
  socket.on('error', () => undefined);
  socket.on('data', (d: Buffer) => got.push(d));
  socket.on('end', () => (state.ended = true));
  socket.on('close', () => (state.closed = true));
  await new Promise((r) => socket.once('connect', r));
  return { socket, state };
}

/**
 * A half-closed session (one side sent its FIN, the other keeps its side open) is relayed, so an
 * answer after a client's end still arrives; but a side that then stays silent does not keep the
 * session, and with it the desktop counted as in use, for ever: after the half-close bound
 * (STAGEDOOR_GATEWAY_HALF_CLOSE_SECONDS) without a byte, the gateway ends it (HAProxy's client-fin /
 * server-fin). Both relay engines, through a port-forward grant; the HTTPS tunnel's native mode is in
 * tunnel-native.test.ts.
 */
describe.each(RELAY_ENGINES)('a half-closed session [%s relay]', (engine) => {
  let broker: TestBroker & { baseUrl: string };
  let gw: GatewayUnderTest;
  const cleanups: (() => void)[] = [];

  beforeAll(async () => {
    broker = await listeningBroker();
    gw = await startTestGateway(broker, [broker.baseUrl], { relay: engine });
  });
  afterEach(() => {
    for (const c of cleanups.splice(0)) c();
    setHalfCloseSeconds(DEFAULT_HALF_CLOSE_SECONDS);
  });
  afterAll(async () => {
    gw?.gateway.stop();
    await broker?.close();
  });

  async function sessionTo(ws: { port: number }) {
    const grant = await grantFor(broker, { host: '127.0.0.1', port: ws.port });
    await waitFor('the gateway to hold the grant', () => gw.gateway.forwarder.isReady(grant.grantId), 30_000, 10);
    const c = await client(grant.port);
    cleanups.push(() => c.socket.destroy());
    return { grant, ...c };
  }
  /**
   * The gateway let the side go that kept its connection: it already had the FIN, so closing sends it
   * nothing; what it writes now is answered with a reset.
   */
  const letGo = (side: { socket: net.Socket; closed: boolean }) =>
    waitFor('the gateway to have let the connection go (a write is reset)', () => {
      if (!side.closed) side.socket.write('anyone there?');
      return side.closed;
    }, 30_000, 50);
  const ended = async (connectionId: string) => {
    await waitFor('the session end to be recorded', async () => (await connectionRow(broker.database, connectionId)).state === 'closed', 30_000, 50);
    return connectionRow(broker.database, connectionId);
  };

  it("a workstation that keeps its side open and silent after the client's FIN: the session ends after the bound, as the client's end", async () => {
    setHalfCloseSeconds(1);
    const ws = await workstation((s) => s.resume()); // reads, never answers, never ends
    cleanups.push(ws.close);
    const { grant, socket, state } = await sessionTo(ws);
    socket.end('last words');
    await waitFor("the client's end at the workstation", () => ws.seen[0]?.ended === true, 30_000, 20);
    expect(ws.seen[0]!.closed).toBe(false); // the FIN was relayed, not the connection closed
    expect(await ended(grant.connectionId)).toMatchObject({ endReason: 'client-closed', bytesUp: 10, bytesDown: 0 });
    await waitFor('the client to be closed', () => state.closed, 30_000, 20);
    await letGo(ws.seen[0]!);
  });

  it("a client that keeps its side open and silent after the workstation's end: the session ends after the bound, as the workstation's end", async () => {
    setHalfCloseSeconds(1);
    const ws = await workstation((s) => s.end('goodbye')); // says its last and ends its side at once
    cleanups.push(ws.close);
    const { grant, socket, state } = await sessionTo(ws);
    await waitFor("the workstation's goodbye and end at the client", () => state.ended && state.text() === 'goodbye', 30_000, 20);
    expect(await ended(grant.connectionId)).toMatchObject({ endReason: 'target-closed', bytesUp: 0, bytesDown: 7 });
    await letGo({ socket, get closed() { return state.closed; } });
  });

  it("a workstation still answering after the client's FIN is not cut: the bound counts silence, not time since the FIN", async () => {
    setHalfCloseSeconds(2);
    // Ticks every 100 ms for 5 s after the client's end: more than two bounds, never a silent one.
    const TICKS = 50;
    const ws = await workstation((s) => {
      s.resume();
      s.on('end', () => {
        let n = 0;
        const timer = setInterval(() => {
          s.write('.');
          if (++n === TICKS) {
            clearInterval(timer);
            s.end();
          }
        }, 100);
        s.once('close', () => clearInterval(timer));
      });
    });
    cleanups.push(ws.close);
    const { grant, socket, state } = await sessionTo(ws);
    socket.end();
    await waitFor("the workstation's end at the client", () => state.ended, 30_000, 50);
    expect(state.text()).toBe('.'.repeat(TICKS));
    expect(await ended(grant.connectionId)).toMatchObject({ endReason: 'client-closed', bytesUp: 0, bytesDown: TICKS });
  });
});
