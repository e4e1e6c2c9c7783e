import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { freePort, waitFor } from '../support/ports.ts';
import { spawnProcess, type Spawned } from '../support/processes.ts';

/**
 * TigerVNC's Xvnc on loopback for the browser session tests, with its display number (xsetroot and
 * xev draw on and listen to it) and a free port. No VNC password by default: the grant is the access
 * control under test; with `password`, the server asks for its own (VncAuth), as a studio's may, and
 * the tab must ask the artist for it.
 */
export async function startXvncDisplay(home: string, size: { width: number; height: number }, opts: { password?: string } = {}): Promise<{ display: number; port: number; proc: Spawned }> {
  const display = freeDisplay();
  const port = await freePort();
  const security = opts.password === undefined ? ['-SecurityTypes', 'None'] : ['-SecurityTypes', 'VncAuth', '-PasswordFile', passwordFile(home, display, opts.password)];
  const proc = spawnProcess('Xvnc', [`:${display}`, '-rfbport', String(port), '-localhost', ...security, '-geometry', `${size.width}x${size.height}`, '-depth', '24', '-nolisten', 'tcp', '-desktop', 'stagedoor-browser'], { HOME: home });
  await waitFor(
    `Xvnc to listen on 127.0.0.1:${port}`,
    () => {
      if (proc.proc.exitCode !== null) throw new Error(`Xvnc exited: ${proc.stderr.join('\n')}`);
      return new Promise<boolean>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
    },
    30_000,
    100,
  );
  return { display, port, proc };
}

function freeDisplay(): number {
  for (let i = 0; i < 200; i++) {
    const d = 100 + Math.floor(Math.random() * 800);
    if (!fs.existsSync(`/tmp/.X${d}-lock`) && !fs.existsSync(`/tmp/.X11-unix/X${d}`)) return d;
  }
  throw new Error('no free X display number');
}

/** A VNC password file (TigerVNC's obfuscated form, from its own `tigervncpasswd -f`), private to `home`. */
function passwordFile(home: string, display: number, password: string): string {
  const file = path.join(home, `vnc-${display}.passwd`);
  fs.writeFileSync(file, execFileSync('tigervncpasswd', ['-f'], { input: `${password}\n` }), { mode: 0o600 });
  return file;
}

/** The RGB of one framebuffer pixel, read from noVNC's canvas in the page (null before it draws). */
export const vncPixel = (page: Page, x: number, y: number): Promise<number[] | null> =>
  // A function, not a string: the page's CSP forbids eval. This file has no DOM types, hence the casts.
  page.evaluate(([px, py]) => {
    type Canvas = { width: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
    const canvas = (globalThis as unknown as { document: { querySelector(s: string): Canvas | null } }).document.querySelector('.vnc-screen canvas');
    if (!canvas || canvas.width === 0) return null;
    return Array.from(canvas.getContext('2d').getImageData(px!, py!, 1, 1).data.slice(0, 3));
  }, [x, y]);
