import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './processes.ts';

/**
 * The first step of every test run: everything in .ci/packages (the programs and files the tests
 * start or load) must be on this machine. A missing one stops the run here, naming its Debian package,
 * instead of failing deep inside a test (or, worse, letting a test skip itself).
 */
export default function checkPackages(): void {
  const r = spawnSync(process.execPath, [path.join(REPO_ROOT, '.ci/packages.mjs'), 'check'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`this machine lacks what the tests need (.ci/packages):\n${r.stdout}${r.stderr}`);
}
