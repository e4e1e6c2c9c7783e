import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isRunning, recordProcessGroup, RUN_DIR_ENV, RUNS_ROOT_ENV, runDirFor, startTime, stopOrphanedRuns, stopRun } from '../support/leftovers.ts';
import { spawnProcess, REPO_ROOT } from '../support/processes.ts';
import { waitFor } from '../support/ports.ts';

/**
 * A test process that dies outright (a crashed worker, a run killed by a signal: Node runs no exit
 * hook then) must not leave its servers running: detached process groups and PostgreSQL, which
 * `pg_ctl` daemonizes, outlive it. The run's record of what it started (test/support/leftovers.ts)
 * lets the next clean-up stop them.
 */

/** A child test process that starts a PostgreSQL and a detached server as the tests do, says their ids, then waits to be killed. */
const CHILD = `
  const fs = await import('node:fs');
  const { startPostgres } = await import(${JSON.stringify(path.join(REPO_ROOT, 'test/support/postgres-server.ts'))});
  const { spawnProcess } = await import(${JSON.stringify(path.join(REPO_ROOT, 'test/support/processes.ts'))});
  const pg = await startPostgres();
  const server = spawnProcess('sleep', ['600'], {});
  const postmaster = Number(fs.readFileSync(pg.dir + '/data/postmaster.pid', 'utf8').split('\\n')[0]);
  console.log(JSON.stringify({ postmaster, server: server.proc.pid, dir: pg.dir }));
  setInterval(() => undefined, 1000);
`;

/** Run `body` with the run's record in `root` (and in `runDir`, if given), then put the environment back. */
async function inRunsRoot<T>(root: string, runDir: string | null, body: () => Promise<T>): Promise<T> {
  const saved = { [RUNS_ROOT_ENV]: process.env[RUNS_ROOT_ENV], [RUN_DIR_ENV]: process.env[RUN_DIR_ENV] };
  process.env[RUNS_ROOT_ENV] = root;
  if (runDir) process.env[RUN_DIR_ENV] = runDir;
  else delete process.env[RUN_DIR_ENV];
  try {
    return await body();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const roots: string[] = [];
afterEach(() => {
  for (const root of roots.splice(0)) stopOrphanedRuns(root);
});

function newRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-leftovers-test-'));
  roots.push(root);
  return root;
}

describe('what a test process started, after it died outright', () => {
  it('a killed test process: its PostgreSQL and detached server keep running, and the next clean-up stops them and removes the data', async () => {
    const root = newRoot();
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
      cwd: REPO_ROOT,
      env: { ...process.env, [RUNS_ROOT_ENV]: root, [RUN_DIR_ENV]: '' }, // the child owns a run of its own
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise((r) => child.once('exit', r));
    const started = await new Promise<{ postmaster: number; server: number; dir: string }>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const line = out.split('\n').find((l) => l.startsWith('{'));
        if (line) resolve(JSON.parse(line) as { postmaster: number; server: number; dir: string });
      });
      child.once('exit', (code) => reject(new Error(`the child test process exited (${code}) before it started its servers`)));
    });
    child.kill('SIGKILL');
    await exited;

    // What the exit hooks cannot help with: both still run, the data is still there.
    expect(isRunning(started.postmaster)).toBe(true);
    expect(isRunning(started.server)).toBe(true);
    expect(fs.existsSync(started.dir)).toBe(true);

    const stopped = stopOrphanedRuns(root);
    expect(stopped).toEqual(expect.arrayContaining([expect.stringContaining('PostgreSQL'), expect.stringContaining('sleep 600')]));
    await waitFor('the leftovers to be gone', () => !isRunning(started.postmaster) && !isRunning(started.server), 30_000, 50);
    expect(fs.existsSync(started.dir)).toBe(false);
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it("a run whose owner still lives is not touched by another run's clean-up; its own teardown stops it", async () => {
    const root = newRoot();
    let server: ReturnType<typeof spawnProcess> | undefined;
    await inRunsRoot(root, null, async () => {
      try {
        server = spawnProcess('sleep', ['600'], {});
        expect(stopOrphanedRuns(root)).toEqual([]); // this process owns the run, and it lives
        expect(isRunning(server.proc.pid!)).toBe(true);
        expect(stopRun(runDirFor())).toEqual([expect.stringContaining('sleep 600')]);
        await server.exited;
      } finally {
        await server?.stop();
      }
    });
  });

  it('a recycled process id: a record whose start time is not the running process\'s signals nothing', async () => {
    const root = newRoot();
    const runDir = path.join(root, '1-1'); // an owner that is not running
    await inRunsRoot(root, runDir, async () => {
      const other = spawnProcess('sleep', ['600'], {});
      try {
        const pid = other.proc.pid!;
        // Recorded as if an earlier process had held this id: one that started before this one did.
        fs.rmSync(runDir, { recursive: true, force: true });
        recordProcessGroup(pid, 'an earlier holder of the id');
        const file = path.join(runDir, fs.readdirSync(runDir)[0]!);
        const entry = JSON.parse(fs.readFileSync(file, 'utf8')) as { startTime: number };
        fs.writeFileSync(file, JSON.stringify({ ...entry, startTime: startTime(pid)! - 1 }));
        expect(stopOrphanedRuns(root)).toEqual([]);
        expect(isRunning(pid)).toBe(true);
      } finally {
        await other.stop();
      }
    });
  });
});
