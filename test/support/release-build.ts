import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './processes.ts';

const run = promisify(execFile);

/** What `npm run release` builds from: when none is newer than dist/release.json, its tarballs are current. */
const SOURCES = ['apps/broker/src', 'apps/broker/package.json', 'apps/gateway/src', 'apps/gateway/bin', 'apps/gateway/native', 'apps/gateway/package.json', 'apps/cli/src', 'apps/cli/bin', 'apps/cli/package.json', 'apps/agent/src', 'apps/agent/package.json', 'apps/web/src', 'apps/web/index.html', 'apps/web/static', 'apps/web/vite.config.ts', 'packages/contract/src', 'packages/contract/package.json', 'packages/ec2-emulator/src', 'packages/ec2-emulator/package.json', 'deploy/aws/src', 'deploy/aws/package.json', 'release/build.ts', 'release/layout.ts', 'release/closure.ts', 'release/tsconfig.json', 'release/files', 'package.json', 'package-lock.json', 'tsconfig.json'];

export interface ReleaseTarballs {
  version: string;
  full: string;
  gateway: string;
  /** The AWS stack's CloudFormation template. */
  awsTemplate: string;
}

/**
 * The release tarballs of this checkout: `npm run release -- --no-measure` (minutes: the web build,
 * tsc over the workspace, packing), run only when a source is newer than the last build, so a test
 * run builds the release at most once. Asynchronous: a build that long must not block the test
 * process (docs/developing.md, "Tests").
 */
export async function ensureRelease(): Promise<ReleaseTarballs> {
  const report = path.join(REPO_ROOT, 'dist/release.json');
  const built = mtime(report);
  const newest = Math.max(...SOURCES.map((s) => newestIn(path.join(REPO_ROOT, s))));
  let current = built >= newest ? read(report) : null;
  if (current && !(fs.existsSync(current.full) && fs.existsSync(current.gateway) && fs.existsSync(current.awsTemplate))) current = null;
  if (current) return current;
  const started = Date.now();
  await run('npm', ['run', 'release', '--', '--no-measure'], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 }).catch((err: { stdout?: string; stderr?: string }) => {
    throw new Error(`npm run release failed:\n${err.stdout ?? ''}\n${err.stderr ?? err}`);
  });
  console.log(`[test harness] built the release (npm run release) in ${Date.now() - started} ms`);
  return read(report)!;
}

function read(report: string): ReleaseTarballs | null {
  try {
    const r = JSON.parse(fs.readFileSync(report, 'utf8')) as { version: string; tarballs: { full: string; gateway: string }; awsTemplate?: string };
    if (!r.awsTemplate) return null; // a build from before the template was an artifact
    return { version: r.version, full: path.join(REPO_ROOT, 'dist', r.tarballs.full), gateway: path.join(REPO_ROOT, 'dist', r.tarballs.gateway), awsTemplate: path.join(REPO_ROOT, 'dist', r.awsTemplate) };
  } catch {
    return null;
  }
}

function mtime(file: string): number {
  return fs.statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0;
}

function newestIn(p: string): number {
  const stat = fs.statSync(p, { throwIfNoEntry: false });
  if (!stat) return 0;
  if (!stat.isDirectory()) return stat.mtimeMs;
  // The native relay's own build output is not a source.
  const entries = fs.readdirSync(p).filter((e) => e !== 'build' && e !== 'node_modules');
  return Math.max(stat.mtimeMs, ...entries.map((e) => newestIn(path.join(p, e))));
}
