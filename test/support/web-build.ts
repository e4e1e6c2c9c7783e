import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from './processes.ts';

const WEB = path.join(REPO_ROOT, 'apps/web');
const SOURCES = ['src', 'build', 'index.html', 'session.html', 'vite.config.ts', 'package.json'];

/**
 * The browser tests load the console the broker serves from apps/web/dist (ADR 0009). `npm install`
 * builds it; this rebuilds it before a test run only when a source is newer than the build.
 */
export default function setup(): void {
  const built = mtime(path.join(WEB, 'dist/index.html'));
  const newest = Math.max(...SOURCES.map((s) => newestIn(path.join(WEB, s))));
  if (built >= newest) return;
  const started = Date.now();
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: WEB, stdio: 'inherit' });
  console.log(`[test harness] built the web app (apps/web/dist) in ${Date.now() - started} ms`);
}

function mtime(file: string): number {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function newestIn(p: string): number {
  const stat = fs.statSync(p, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(stat.mtimeMs, ...fs.readdirSync(p).map((e) => newestIn(path.join(p, e))));
}
