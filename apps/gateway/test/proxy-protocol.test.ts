import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectionRow } from '../../broker/test/gateways/fixtures.ts';
import type { TestBroker } from '../../../test/support/broker.ts';
import { waitFor } from '../../../test/support/ports.ts';
import { AddressList, normaliseAddress } from '../src/addresses.ts';
import { buildProxyV2, parseProxyV2, PROXY_V2_SIGNATURE } from '../src/proxy-protocol.ts';
import { echoServer, grantFor, listeningBroker, startTestGateway, type GatewayUnderTest } from './harness.ts';

/** Dial a grant's port from `from`, as a load balancer would: the header first, then "hello"; what the echo answers says whether it was relayed. */
function viaBalancer(port: number, header: Buffer | null, from = '127.0.0.2'): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress: from });
    let got = '';
    s.on('connect', () => {
      if (header) s.write(header);
      s.write('hello');
    });
    s.on('data', (d) => {
      got += d.toString();
      if (got === 'hello') {
        s.end();
        resolve('relayed');
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    s.on('close', () => resolve(got ? `partial:${got}` : 'refused'));
  });
}

describe('PROXY protocol v2 header', () => {
  it.each([
    { source: { address: '203.0.113.7', port: 51234 }, destination: { address: '192.0.2.1', port: 20001 } },
    { source: { address: '2001:db8::7', port: 443 }, destination: { address: '2001:db8:0:1::1', port: 20002 } },
  ])('round-trips $source.address', ({ source, destination }) => {
    const header = buildProxyV2(source, destination);
    const parsed = parseProxyV2(Buffer.concat([header, Buffer.from('SSH-2.0-client\r\n')]));
    expect(parsed).toEqual({ kind: 'ok', length: header.length, source });
  });

  it('asks for more bytes, refuses garbage, a wrong version and an oversized header', () => {
    const header = buildProxyV2({ address: '203.0.113.7', port: 1 }, { address: '192.0.2.1', port: 2 });
    expect(parseProxyV2(header.subarray(0, 5))).toEqual({ kind: 'incomplete' });
    expect(parseProxyV2(header.subarray(0, 20))).toEqual({ kind: 'incomplete' });
    expect(parseProxyV2(Buffer.from('SSH-2.0-OpenSSH_9.2\r\n'))).toMatchObject({ kind: 'invalid' });
    expect(parseProxyV2(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'))).toMatchObject({ kind: 'invalid' }); // v1 is not accepted
    const v1 = Buffer.from(header);
    v1[12] = 0x11;
    expect(parseProxyV2(v1)).toMatchObject({ kind: 'invalid', reason: 'PROXY protocol version 1' });
    const huge = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
    expect(parseProxyV2(huge)).toMatchObject({ kind: 'invalid', reason: 'PROXY header too long' });
    const local = Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
    expect(parseProxyV2(local)).toEqual({ kind: 'ok', length: 16, source: null });
  });
});

describe('addresses (ipaddr.js)', () => {
  it('an IPv6 client in a PROXY header matches its grant however either is spelled', () => {
    const header = buildProxyV2({ address: '2001:DB8:0:0:0:0:0:7', port: 1 }, { address: '2001:db8::1', port: 2 });
    const parsed = parseProxyV2(header);
    expect(parsed).toMatchObject({ kind: 'ok', source: { address: '2001:db8::7' } });
    for (const spelling of ['2001:db8::7', '2001:0db8:0000::0007', '2001:DB8:0:0::7']) expect(normaliseAddress(spelling)).toBe('2001:db8::7');
    expect(normaliseAddress('::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(normaliseAddress('::ffff:a00:1')).toBe('10.0.0.1'); // the same mapped address in hex
  });

  it('a PROXY source list refuses octal and short IPv4 spellings instead of reading them as other addresses', () => {
    expect(() => new AddressList(['010.0.0.1'])).toThrow(/not an address/); // ipaddr.js alone reads this as 8.0.0.1
    expect(() => new AddressList(['10.1'])).toThrow(/not an address/);
    expect(() => new AddressList(['10.0.0.0/33'])).toThrow(/bad prefix/);
    expect(() => new AddressList(['10.0.0.0/8/1'])).toThrow(/not an address/);
    const list = new AddressList(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7']);
    expect(['10.200.0.1', '::ffff:10.1.2.3', '2001:db8:ffff::1', '192.0.2.7'].map((a) => list.has(a))).toEqual([true, true, true, true]);
    expect(['11.0.0.1', '2001:db9::1', '192.0.2.8', 'not-an-ip', '::a00:1'].map((a) => list.has(a))).toEqual([false, false, false, false, false]);
  });
});

describe('a gateway behind a network load balancer (PROXY protocol on)', () => {
  let broker: TestBroker & { baseUrl: string };
  let gw: GatewayUnderTest;
  let echo: Awaited<ReturnType<typeof echoServer>>;
  beforeAll(async () => {
    broker = await listeningBroker();
    // The "load balancer" is 127.0.0.2: only it may send headers.
    gw = await startTestGateway(broker, [broker.baseUrl], { proxy: ['127.0.0.2/32'] });
    echo = await echoServer();
  });
  afterAll(async () => {
    gw?.gateway.stop();
    await echo?.close();
    await broker?.close();
  });

  it('takes the client address from the header, refuses other sources, missing headers and other clients', async () => {
    const g = await grantFor(broker, { host: '127.0.0.1', port: echo.port }, { client: '203.0.113.7' });
    await waitFor('grant', () => gw.gateway.forwarder.isReady(g.grantId), 30_000, 10);
    const hdr = (address: string) => buildProxyV2({ address, port: 40000 }, { address: '127.0.0.1', port: g.port });
    expect(await viaBalancer(g.port, null)).not.toBe('relayed'); // no header: refused
    expect(await viaBalancer(g.port, hdr('203.0.113.7'), '127.0.0.3')).not.toBe('relayed'); // not from the balancer
    expect(await viaBalancer(g.port, hdr('203.0.113.99'))).not.toBe('relayed'); // another client
    const reasons = async () => (await broker.services.audit.list({ action: 'gateway.connection_refused' }, 50, 0)).items.map((i) => `${i.reason}:${i.sourceAddress}`);
    await waitFor('refusals audited', async () => (await reasons()).length >= 3, 30_000, 25);
    expect(await reasons()).toEqual(expect.arrayContaining(['proxy-protocol:127.0.0.2', 'proxy-protocol:127.0.0.3', 'wrong-client:203.0.113.99']));
    expect(await viaBalancer(g.port, hdr('203.0.113.7'))).toBe('relayed');
  });
});

describe('a gateway with PROXY protocol on and no source list', () => {
  let broker: TestBroker & { baseUrl: string };
  let gw: GatewayUnderTest;
  let echo: Awaited<ReturnType<typeof echoServer>>;
  beforeAll(async () => {
    broker = await listeningBroker();
    // Started in-process (the configuration refuses this; see config.test.ts): an empty list trusts nobody.
    gw = await startTestGateway(broker, [broker.baseUrl], { proxy: [] });
    echo = await echoServer();
  });
  afterAll(async () => {
    gw?.gateway.stop();
    await echo?.close();
    await broker?.close();
  });

  it('a spoofed PROXY header from a peer outside the source list relays nothing, and the refusal is logged and reported', async () => {
    const g = await grantFor(broker, { host: '127.0.0.1', port: echo.port }, { client: '203.0.113.7' });
    await waitFor('grant', () => gw.gateway.forwarder.isReady(g.grantId), 5000, 10);
    // Any local peer claims to be the granted client.
    const spoofed = buildProxyV2({ address: '203.0.113.7', port: 40000 }, { address: '127.0.0.1', port: g.port });
    expect(await viaBalancer(g.port, spoofed, '127.0.0.1')).not.toBe('relayed');
    expect(echo.connections).toBe(0);
    await waitFor('the refusal audited', async () => (await broker.services.audit.list({ action: 'gateway.connection_refused', targetId: g.grantId }, 5, 0)).total > 0, 5000, 25);
    const [refusal] = (await broker.services.audit.list({ action: 'gateway.connection_refused', targetId: g.grantId }, 5, 0)).items;
    expect(refusal).toMatchObject({ reason: 'proxy-protocol', sourceAddress: '127.0.0.1' });
    expect(gw.logs.some((l) => l.includes('outside STAGEDOOR_GATEWAY_PROXY_SOURCES') && l.includes('"peer":"127.0.0.1"'))).toBe(true);
    // The grant is still unused: the real client, through a real balancer, would still get in.
    expect((await connectionRow(broker.database, g.connectionId)).state).not.toBe('connected');
  });
});
