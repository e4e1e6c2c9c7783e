import { describe, expect, it } from 'vitest';
import { renderInstructions } from '../../src/domain/connections/connection-files.ts';

describe('connection instructions per protocol (pure)', () => {
  const base = { host: '203.0.113.10', port: 40001, username: 'ana', desktopName: 'edit-001' };

  it.each([
    ['rdp', 'edit-001.rdp', ['full address:s:203.0.113.10:40001', 'username:s:ana', 'prompt for credentials:i:1']],
    ['dcv', 'edit-001.dcv', ['[connect]', 'host=203.0.113.10', 'port=40001', 'user=ana']],
    ['vnc', 'edit-001.vnc', ['[Connection]', 'Host=203.0.113.10:40001']],
  ] as const)('%s: a %s file with the address and port', (protocol, fileName, lines) => {
    const r = renderInstructions({ ...base, protocol });
    expect(r.fileName).toBe(fileName);
    expect(r.command).toBeNull();
    const fileLines = r.file!.split('\r\n');
    for (const l of lines) expect(fileLines).toContain(l);
    expect(r.file!.endsWith('\r\n')).toBe(true);
  });

  it('ssh: a command line; pcoip: the host for the client', () => {
    expect(renderInstructions({ ...base, protocol: 'ssh' })).toEqual({ fileName: null, file: null, command: 'ssh -p 40001 ana@203.0.113.10' });
    expect(renderInstructions({ ...base, protocol: 'pcoip' }).command).toBe('203.0.113.10:40001');
  });

  it('appends the plan\'s extra lines and strips line breaks from them', () => {
    const r = renderInstructions({ ...base, protocol: 'rdp', extraLines: ['use multimon:i:1', 'evil\r\nfull address:s:attacker:1'] });
    const lines = r.file!.split('\r\n');
    expect(lines).toContain('use multimon:i:1');
    expect(lines).toContain('evilfull address:s:attacker:1');
  });

  it.each([
    ['rdp', ['use multimon:i:1', 'Audiomode:i:2', 'smart sizing:i:1'], ['use multimon:i:1', 'Audiomode:i:2', 'smart sizing:i:1'], ['use multimon:i:0', 'audiomode:i:0']],
    ['dcv', ['sessionid=editor', 'proxytype=none'], ['sessionid=editor', 'proxytype=none'], ['sessionid=console']],
    ['vnc', ['FullScreen=1'], ['FullScreen=1'], []],
  ] as const)('a %s plan line replaces the default line with the same key, in its place; new keys follow', (protocol, extra, present, gone) => {
    const lines = renderInstructions({ ...base, protocol, extraLines: [...extra] }).file!.split('\r\n');
    for (const l of present) expect(lines.filter((x) => x === l)).toHaveLength(1);
    for (const l of gone) expect(lines).not.toContain(l);
    if (protocol === 'rdp') expect(lines.indexOf('use multimon:i:1')).toBeLessThan(lines.indexOf('smart sizing:i:1'));
  });

  it('a plan line cannot move where the client connects (the address, the routed token)', () => {
    const rdp = renderInstructions({ ...base, protocol: 'rdp', extraLines: ['full address:s:attacker:3389', 'LoadBalanceInfo:s:other'] }).file!;
    expect(rdp).not.toContain('attacker');
    expect(rdp).not.toContain('other');
    expect(rdp).toContain('full address:s:');
    const dcv = renderInstructions({ ...base, protocol: 'dcv', extraLines: ['host=attacker', 'port=1'] }).file!;
    expect(dcv).not.toContain('attacker');
    expect(dcv).not.toContain('port=1\r\n');
  });

  it('brackets IPv6 addresses and makes safe file names', () => {
    const r = renderInstructions({ ...base, host: 'fd00::5', desktopName: 'Ana / colour #1', protocol: 'rdp' });
    expect(r.file).toContain('full address:s:[fd00::5]:40001');
    expect(r.fileName).toBe('Ana-colour-1.rdp');
  });

  it('quotes an unusual username in the ssh command', () => {
    expect(renderInstructions({ ...base, username: "o'brien x", protocol: 'ssh' }).command).toBe("ssh -p 40001 'o'\\''brien x'@203.0.113.10");
  });
});
