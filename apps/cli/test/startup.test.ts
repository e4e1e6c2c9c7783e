import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test/support/processes.ts';

const run = promisify(execFile);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-startup-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The modules `stagedoor <args>` resolves, as repository paths (node_modules packages by name). */
async function modulesOf(args: string[]): Promise<{ code: number; modules: string[]; out: string }> {
  const trace = path.join(tmp, `${args.join('_').replace(/\W/g, '')}-${Date.now()}.txt`);
  const env = { ...process.env, TRACE_IMPORTS_FILE: trace, XDG_CONFIG_HOME: path.join(tmp, 'config'), STAGEDOOR_URL: '', STAGEDOOR_TOKEN: '' };
  const r = await run(process.execPath, [path.join(REPO_ROOT, 'test/support/trace-imports.mjs'), ...args], { env, cwd: tmp }).then(
    (ok) => ({ code: 0, out: ok.stdout + ok.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, out: err.stdout + err.stderr }),
  );
  const urls = fs.existsSync(trace) ? fs.readFileSync(trace, 'utf8').split('\n').filter(Boolean) : [];
  const modules = [...new Set(urls.filter((u) => u.startsWith('file:')).map((u) => path.relative(REPO_ROOT, new URL(u).pathname)))];
  return { ...r, modules };
}

// What the light commands must not load: the broker (Fastify, PGlite, the AWS SDK), the gateway,
// the emulator, and the contract's zod schemas.
const HEAVY = [/^apps\/broker\//, /^apps\/gateway\//, /^packages\/ec2-emulator\//, /^packages\/contract\/src\/index\.ts$/, /node_modules\/(zod|fastify|@electric-sql|@aws-sdk|pino)\//];
const heavyIn = (modules: string[]) => modules.filter((m) => HEAVY.some((h) => h.test(m)));

describe('stagedoor start-up: a command loads only what it runs (issue 16 point 7)', () => {
  it('--version prints the version and loads no broker, gateway, emulator or zod module', async () => {
    const r = await modulesOf(['--version']);
    expect(r.code, r.out).toBe(0);
    expect(r.out.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(r.modules).toContain('apps/cli/src/main.ts');
    expect(heavyIn(r.modules)).toEqual([]);
  });

  it('desktops (and its --help) load no broker module; desktops loads its action, and only it', async () => {
    const help = await modulesOf(['desktops', '--help']);
    expect(help.code, help.out).toBe(0);
    expect(heavyIn(help.modules)).toEqual([]);
    expect(help.modules.filter((m) => m.startsWith('apps/cli/src/actions/'))).toEqual([]);
    const desktops = await modulesOf(['desktops']); // not signed in: it fails, after loading its action
    expect(desktops.out).toContain('not signed in');
    expect(desktops.modules).toContain('apps/cli/src/actions/desktops.ts');
    expect(heavyIn(desktops.modules)).toEqual([]);
  });

  it('the trace sees broker modules where a command does load them (admin loads the broker)', async () => {
    const r = await modulesOf(['admin', 'create-user', 'x', '--role', 'nobody']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('--role must be one of');
    expect(r.modules.some((m) => m.startsWith('apps/broker/src/'))).toBe(true);
  });
});
