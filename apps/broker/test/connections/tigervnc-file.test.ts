import { describe, expect, it } from 'vitest';
import { tigervncFile } from '../../src/domain/connections/connection-files.ts';

describe("TigerVNC's file format (pure)", () => {
  it('starts with the identifier TigerVNC checks, names a TCP port with ::, and uses LF', () => {
    expect(tigervncFile('203.0.113.10', 40001)).toBe('TigerVNC Configuration file Version 1.0\n\nServerName=203.0.113.10::40001\n');
  });
  it('brackets an IPv6 address', () => {
    expect(tigervncFile('2001:db8::5', 5901)).toContain('ServerName=[2001:db8::5]::5901\n');
  });
});
