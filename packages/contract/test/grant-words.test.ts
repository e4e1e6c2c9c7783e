import { describe, expect, it } from 'vitest';
import { describeGrant, type GrantFacts } from '../src/grant-words.ts';

const at = (iso: string) => iso.slice(11, 16);
const base: GrantFacts = { mode: 'routed', state: 'unused', connectBy: '2026-12-03T09:02:00.000Z', singleUse: true, reconnectUntil: null };

describe('what a grant allows, in words (portal and stagedoor connect)', () => {
  it.each<[string, Partial<GrantFacts>, RegExp]>([
    ['unused, single use', {}, /^Single use: the first session must start before 09:02; once it ends, connect again/],
    ['unused, reconnects allowed', { singleUse: false }, /^Connect before 09:02; after a session ends, this computer may reconnect/],
    ['in use, single use', { state: 'in-use' }, /admits one session, and it is running/],
    ['in use, reconnects allowed', { state: 'in-use', singleUse: false }, /one session at a time/],
    ['ended inside the reconnect window', { state: 'ended', singleUse: false, reconnectUntil: '2026-12-03T09:20:00.000Z' }, /may reconnect until 09:20, then connect again/],
    ['ended, no reconnect', { state: 'ended' }, /^The session ended: connect again for a fresh one\.$/],
    ['expired unused', { state: 'expired' }, /^Not used before 09:02, so it expired/],
    ['revoked', { state: 'revoked' }, /desktop was released or access changed/],
  ])('%s', (_name, facts, words) => {
    expect(describeGrant({ ...base, ...facts }, at)).toMatch(words);
  });
});
