import { TUNNEL_CLOSE } from '@stagedoor/contract/tunnel';
import { describe, expect, it } from 'vitest';
import { describeClose } from '../src/browser/tunnel.ts';

/** What the session tab says for each way the gateway's tunnel closes (the gateway's reasons are its REFUSAL_MESSAGES). */
const URL = 'wss://gw.example.test:443/tunnel';
const at = { opened: true, byUser: false, url: URL };

describe('describeClose', () => {
  it.each([
    ['a used grant', { code: TUNNEL_CLOSE.refused, reason: 'this connection grant was used: connect again from your Stagedoor portal' }, at, 'The gateway refused this session', 'This connection grant was used: connect again from your Stagedoor portal.'],
    ['an expired grant', { code: TUNNEL_CLOSE.refused, reason: 'this connection grant expired before it was used: connect again from your Stagedoor portal' }, at, 'The gateway refused this session', 'This connection grant expired before it was used: connect again from your Stagedoor portal.'],
    ['another address', { code: TUNNEL_CLOSE.refused, reason: 'this connection grant was issued to another address: connect again from your Stagedoor portal on this network' }, at, 'The gateway refused this session', 'This connection grant was issued to another address: connect again from your Stagedoor portal on this network.'],
    ['an admin Disconnect', { code: TUNNEL_CLOSE.closed, reason: 'an administrator disconnected this session: connect again from your Stagedoor portal' }, at, 'The session was closed', 'An administrator disconnected this session: connect again from your Stagedoor portal.'],
    ['the desktop down', { code: TUNNEL_CLOSE.targetUnreachable, reason: 'the desktop did not accept the connection: try again shortly' }, at, 'The desktop did not answer', 'The desktop did not accept the connection: try again shortly.'],
    ['the desktop hung up', { code: 1000, reason: '' }, at, 'The desktop ended the session', 'The desktop closed the connection.'],
    ['the user', { code: 1000, reason: '' }, { ...at, byUser: true }, 'Disconnected', 'You ended this session. Your desktop keeps running until it is released.'],
  ])('%s', (_what, close, ctx, title, detail) => {
    expect(describeClose(close, ctx)).toMatchObject({ title, detail });
  });

  it('a socket that never opened points at the certificate, with the gateway address to visit', () => {
    const end = describeClose({ code: 1006, reason: '' }, { opened: false, byUser: false, url: URL });
    expect(end.title).toBe('The gateway could not be reached');
    expect(end.detail).toContain('open https://gw.example.test:443/healthz in this browser once');
    expect(end.canRetry).toBe(true);
  });

  it('a drop after it opened is a lost connection', () => {
    expect(describeClose({ code: 1006, reason: '' }, at).title).toBe('The connection to the gateway was lost');
  });
});
