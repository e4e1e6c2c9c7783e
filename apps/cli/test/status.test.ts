import { describe, expect, it } from 'vitest';
import { statusText, table, type ConnectionView } from '../src/actions/desktops.ts';

const conn = (over: Partial<ConnectionView>): ConnectionView => ({
  id: 'c1',
  state: 'ready',
  protocol: 'rdp',
  workstation: { id: 'w1', name: 'edit-001' },
  progress: { stage: 'ready', percent: 100, message: 'ready' },
  grant: null,
  instructions: null,
  ...over,
});
const time = (iso: string) => iso.slice(11, 16);

describe('stagedoor status: connections and their grants in words', () => {
  it('a routed grant between sessions says until when this computer may reconnect', () => {
    const text = statusText('https://broker.example', { username: 'ana', role: 'user' }, [
      { desktop: 'edit', connection: conn({ grant: { mode: 'routed', state: 'ended', connectBy: '2026-12-03T10:00:00Z', singleUse: false, reconnectUntil: '2026-12-03T10:30:00Z' } }) },
      { desktop: 'comp', connection: conn({ workstation: { id: 'w2', name: 'comp-7' }, protocol: 'dcv', grant: { mode: 'portForward', state: 'unused', connectBy: '2026-12-03T10:02:00Z', singleUse: true, reconnectUntil: null } }) },
    ], time);
    const lines = text.split('\n');
    expect(lines[0]).toBe('signed in to https://broker.example as ana (user)');
    expect(lines[1]).toMatch(/^DESKTOP\s+MACHINE\s+PROTOCOL\s+STATE\s+GRANT$/);
    expect(lines[2]).toMatch(/^edit\s+edit-001\s+rdp\s+ready\s+The session ended; this computer may reconnect until 10:30, then connect again for a fresh one\.$/);
    expect(lines[3]).toMatch(/^comp\s+comp-7\s+dcv\s+ready\s+Single use: the first session must start before 10:02/);
  });

  it('no connections says where to look', () => {
    expect(statusText('http://127.0.0.1:8080', { username: 'ana', role: 'user' }, [], time)).toContain('no connections (`stagedoor desktops` lists what you may use)');
  });

  it('columns are as wide as their widest cell, no trailing blanks', () => {
    expect(table(['A', 'B'], [['long-name', ''], ['x', 'y']])).toBe('A          B\nlong-name\nx          y');
  });
});
