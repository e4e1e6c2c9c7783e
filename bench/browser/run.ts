import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WebSocketServer } from 'ws';
import { launchBrowser } from '../../test/support/browser.ts';
import { REPO_ROOT } from '../../test/support/processes.ts';
import { startXvncDisplay } from '../../test/web/browser-session-peers.ts';
import { PAGE_HTML, PAGE_JS } from './page.ts';

/**
 * The browser-session row (issue 17): noVNC in Debian's Chromium against a real Xvnc, through the
 * gateway's HTTPS tunnel (TLS, the token as first message, the gateway's relay) and through a plain
 * websockify-style JavaScript relay (ws://, no token, no TLS) in the same run:
 * - frames per second: distinct pictures the canvas shows while xsetroot repaints the desktop in a loop;
 * - input-to-echo: a key from noVNC → xev on the display sees it → xsetroot paints a new colour → the
 *   canvas shows it (the X-side part is the same for both paths; the difference is the path);
 * - memory per browser session at the gateway: the gateway's process (RSS, heap) with N idle noVNC
 *   sessions open, less the same with none, over N.
 * `npm run bench:browser` (a few minutes). Not a test: it prints figures.
 */
const SECONDS = Number(process.argv.find((a) => a.startsWith('--seconds='))?.slice(10) ?? 5);
const ECHOES = Number(process.argv.find((a) => a.startsWith('--echoes='))?.slice(9) ?? 30);
const SESSIONS = Number(process.argv.find((a) => a.startsWith('--sessions='))?.slice(11) ?? 8);
const TOKEN = 'benchtokenaaaaaaaaaaaaaaaaaaaaaa';
const NOVNC = path.join(REPO_ROOT, 'node_modules/@novnc/novnc');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.95))] ?? NaN;

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-bench-browser-'));
  const children: ChildProcess[] = [];
  const xvnc = await startXvncDisplay(dir, { width: 640, height: 480 });
  const display = `:${xvnc.display}`;
  try {
    // The gateway's tunnel, in a process of its own.
    const gw = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', path.join(import.meta.dirname, 'gateway-child.ts'), path.join(dir, 'gateway'), TOKEN, String(xvnc.port)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(gw);
    const hello = await nextMessage<{ port: number; spki: string }>(gw);
    const gatewayUrl = `wss://127.0.0.1:${hello.port}/tunnel`;
    const mem = async () => {
      gw.send('mem');
      return nextMessage<{ rss: number; heapUsed: number; external: number }>(gw);
    };

    // websockify's job in a few lines: each WebSocket becomes one TCP connection, no token, no TLS.
    const relayHttp = http.createServer();
    const wss = new WebSocketServer({ server: relayHttp, perMessageDeflate: false });
    wss.on('connection', (ws) => {
      const tcp = net.connect(xvnc.port, '127.0.0.1');
      tcp.setNoDelay(true);
      ws.on('message', (d: Buffer) => tcp.write(d));
      tcp.on('data', (d) => ws.send(d));
      ws.on('close', () => tcp.destroy());
      tcp.on('close', () => ws.close());
      tcp.on('error', () => ws.terminate());
    });
    await new Promise<void>((r) => relayHttp.listen(0, '127.0.0.1', r));
    const relayUrl = `ws://127.0.0.1:${(relayHttp.address() as net.AddressInfo).port}/`;

    // The page and noVNC's modules as they are in node_modules.
    const pages = http.createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0]!;
      if (url === '/bench.html') return void res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE_HTML);
      if (url === '/bench.js') return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(PAGE_JS);
      const file = path.join(NOVNC, path.normalize(url.replace(/^\/novnc\//, '')));
      if (!url.startsWith('/novnc/') || !file.startsWith(NOVNC) || !fs.existsSync(file)) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/javascript' }).end(fs.readFileSync(file));
    });
    await new Promise<void>((r) => pages.listen(0, '127.0.0.1', r));
    const pageUrl = `http://127.0.0.1:${(pages.address() as net.AddressInfo).port}/bench.html`;

    const browser = await launchBrowser([`--ignore-certificate-errors-spki-list=${hello.spki}`]);
    const rows: { path: string; fps: number; echoMedian: number; echoP95: number; misses: number }[] = [];
    try {
      for (const [name, url, token] of [
        ['gateway tunnel (wss, token)', gatewayUrl, TOKEN],
        ['plain JS relay (ws)', relayUrl, null],
      ] as const) {
        const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
        await page.goto(pageUrl);
        await page.waitForFunction('window.benchReady === true');
        const idx = await page.evaluate(([u, t]) => (globalThis as unknown as { openSession(u: string, t: string | null): Promise<number> }).openSession(u!, t ?? null), [url, token] as const);

        // Frames: the desktop repainted in a loop, two colours.
        const animator = spawn('bash', ['-c', `while :; do xsetroot -display ${display} -solid '#c03030'; xsetroot -display ${display} -solid '#3030c0'; done`], { stdio: 'ignore', detached: true });
        await sleep(1000);
        const fps = await page.evaluate(([i, ms]) => (globalThis as unknown as { framesPerSecond(i: number, ms: number): Promise<number> }).framesPerSecond(i!, ms!), [idx, SECONDS * 1000]);
        process.kill(-animator.pid!, 'SIGKILL');
        await sleep(500);

        // Echo: xev sees the key, xsetroot answers with a new colour.
        const xev = spawn('stdbuf', ['-oL', 'xev', '-display', display, '-root', '-event', 'keyboard']);
        children.push(xev);
        let flip = 0;
        let buf = '';
        xev.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          const presses = buf.split('KeyPress event').length - 1;
          if (presses === 0) return;
          buf = buf.slice(buf.lastIndexOf('KeyPress event') + 1);
          for (let k = 0; k < presses; k++) spawn('xsetroot', ['-display', display, '-solid', ++flip % 2 ? '#20a020' : '#a0a020'], { stdio: 'ignore' });
        });
        await sleep(500);
        const echoes: number[] = [];
        let misses = 0;
        for (let k = 0; k < ECHOES; k++) {
          const ms = await page.evaluate(([i]) => (globalThis as unknown as { keyEcho(i: number, t: number): Promise<number | null> }).keyEcho(i!, 2000), [idx]);
          if (ms === null) misses++;
          else echoes.push(ms);
          await sleep(50);
        }
        xev.kill();
        await page.close();
        rows.push({ path: name, fps, echoMedian: median(echoes), echoP95: p95(echoes), misses });
      }

      // Memory per session at the gateway: N idle noVNC sessions through it.
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(pageUrl);
      await page.waitForFunction('window.benchReady === true');
      await sleep(1000);
      const before = await mem();
      for (let k = 0; k < SESSIONS; k++) await page.evaluate(([u, t]) => (globalThis as unknown as { openSession(u: string, t: string): Promise<number> }).openSession(u!, t!), [gatewayUrl, TOKEN]);
      await sleep(2000);
      const after = await mem();
      await page.evaluate('window.closeAll()');
      await page.close();

      const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
      const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`;
      console.log(`\nBrowser sessions (noVNC ${JSON.parse(fs.readFileSync(path.join(NOVNC, 'package.json'), 'utf8')).version}, Xvnc 640x480, Chromium headless), ${os.cpus().length} CPUs, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      console.log('| path | frames/s | input-to-echo median | p95 | misses |');
      console.log('| --- | --- | --- | --- | --- |');
      for (const r of rows) console.log(`| ${r.path} | ${f(r.fps)} | ${f(r.echoMedian)} ms | ${f(r.echoP95)} ms | ${r.misses}/${ECHOES} |`);
      console.log(`\nGateway memory with ${SESSIONS} idle browser sessions: RSS +${kib(after.rss - before.rss)} (${kib((after.rss - before.rss) / SESSIONS)} per session), heap +${kib(after.heapUsed - before.heapUsed)} (${kib((after.heapUsed - before.heapUsed) / SESSIONS)} per session), buffers +${kib(after.external - before.external)}`);
    } finally {
      await browser.close();
      relayHttp.close();
      pages.close();
    }
  } finally {
    for (const c of children) c.kill();
    await xvnc.proc.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as T));
    child.once('exit', (code) => reject(new Error(`the gateway process exited (${code})`)));
  });
}

await main();
