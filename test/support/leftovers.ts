import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * What a test run started outside its own processes, recorded so that it can be stopped even when
 * the process that started it never ran its clean-up. The exit hooks in processes.ts and
 * postgres-server.ts cover a failed test; they do not cover a test process that dies outright: a
 * worker that crashes, one killed by a signal (Node runs no `exit` handler on SIGTERM or SIGKILL), a
 * run interrupted from the keyboard. Servers started detached (their own process group) and
 * PostgreSQL, which `pg_ctl` daemonizes, then outlive it, holding ports, memory and temp dirs.
 *
 * Each run has a directory, `<root>/<owner pid>-<owner start time>`, with one file per thing started.
 * The run's owner is vitest's main process (global-setup.ts puts the directory in the environment
 * the test workers inherit); a process with none in its environment (a bench) is its own owner.
 * - The owner's global teardown stops whatever its run still lists (a crashed worker's servers).
 * - Every run first stops what earlier runs list whose owner is gone (a run killed outright).
 * Process ids are checked against their start time, so a recycled id is never signalled.
 */

export const RUNS_ROOT_ENV = 'STAGEDOOR_TEST_RUNS_ROOT';
export const RUN_DIR_ENV = 'STAGEDOOR_TEST_RUN_DIR';

type Leftover =
  /** A process group started detached (processes.ts): its leader's id is the group's. */
  | { kind: 'process-group'; pid: number; startTime: number; what: string }
  /** A PostgreSQL server (its postmaster in `data/postmaster.pid`) and the temp dir it lives in. */
  | { kind: 'postgres'; dir: string; data: string };

const runsRoot = () => process.env[RUNS_ROOT_ENV] || path.join(os.tmpdir(), 'stagedoor-test-runs');

/** The directory of the run that owns `pid` (this process by default). */
export function runDirFor(pid = process.pid): string {
  return path.join(runsRoot(), `${pid}-${startTime(pid) ?? 0}`);
}

const ownRunDir = () => process.env[RUN_DIR_ENV] || runDirFor();
let counter = 0;

/** Record something started; the returned function forgets it once it has been stopped cleanly. */
export function recordLeftover(entry: Leftover): () => void {
  const dir = ownRunDir();
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${process.pid}-${counter++}.json`);
  fs.writeFileSync(file, JSON.stringify(entry));
  return () => fs.rmSync(file, { force: true });
}

/**
 * A process group started now by this process. Forgetting it (once its leader has exited) keeps the
 * record while any process of the group still runs: a leader can exit before its children.
 */
export function recordProcessGroup(pid: number, what: string): () => void {
  const since = startTime(pid) ?? 0;
  const forget = recordLeftover({ kind: 'process-group', pid, startTime: since, what });
  return () => {
    if (groupMembers(pid, since).length === 0) forget();
  };
}

/** Stop everything a run directory lists, and remove it; what was still running, in words. */
export function stopRun(dir: string): string[] {
  const stopped: string[] = [];
  for (const name of safeList(dir)) {
    const file = path.join(dir, name);
    try {
      const said = stop(JSON.parse(fs.readFileSync(file, 'utf8')) as Leftover);
      if (said) stopped.push(said);
    } catch {
      // a half-written record (its writer died mid-write): nothing it names can be trusted
    }
    fs.rmSync(file, { force: true });
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return stopped;
}

/** Stop what every earlier run lists whose owner process is gone. */
export function stopOrphanedRuns(root = runsRoot()): string[] {
  return safeList(root).flatMap((name) => {
    const m = /^(\d+)-(\d+)$/.exec(name);
    if (!m || startTime(Number(m[1])) === Number(m[2])) return [];
    return stopRun(path.join(root, name));
  });
}

function stop(entry: Leftover): string | null {
  if (entry.kind === 'process-group') {
    const members = groupMembers(entry.pid, entry.startTime);
    for (const pid of members) signal(pid, 'SIGKILL');
    return members.length ? `${entry.what} (process group ${entry.pid}, ${members.length} processes)` : null;
  }
  const postmaster = postmasterOf(entry.data);
  if (postmaster !== null) {
    // SIGQUIT is PostgreSQL's immediate shutdown (`pg_ctl stop -m immediate`): the postmaster stops every backend.
    signal(postmaster, 'SIGQUIT');
    const deadline = Date.now() + 10_000;
    while (isRunning(postmaster) && Date.now() < deadline) sleepSync(50);
    if (isRunning(postmaster)) signal(postmaster, 'SIGKILL');
  }
  fs.rmSync(entry.dir, { recursive: true, force: true });
  return postmaster === null ? null : `PostgreSQL (postmaster ${postmaster}, ${entry.data})`;
}

/** The postmaster of a data directory, if it runs: `postmaster.pid`'s first line, checked against its command line. */
function postmasterOf(data: string): number | null {
  let pid: number;
  try {
    pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return null;
  }
  if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return null;
  return cmdline(pid)?.includes(data) ? pid : null;
}

/**
 * The processes of the group whose leader was `pgid`, started at `since`. If another process holds
 * that id now, the id was recycled and the group is someone else's; a leader that has exited may
 * leave members, which started no earlier than it did.
 */
function groupMembers(pgid: number, since: number): number[] {
  const leader = startTime(pgid);
  if (leader !== null && leader !== since) return [];
  return safeList('/proc').flatMap((name) => {
    if (!/^\d+$/.test(name)) return [];
    const stat = procStat(Number(name));
    return stat && stat.state !== 'Z' && stat.pgrp === pgid && stat.startTime >= since ? [Number(name)] : [];
  });
}

/** Fields of /proc/<pid>/stat after the command (which may hold spaces and parentheses): state (3rd), process group (5th) and start time (22nd, clock ticks since boot). */
function procStat(pid: number): { state: string; pgrp: number; startTime: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, pgrp: Number(fields[2]), startTime: Number(fields[19]) };
  } catch {
    return null;
  }
}

/** When a process started (null: no such process), to tell it from a later one given the same id. */
export function startTime(pid: number): number | null {
  return procStat(pid)?.startTime ?? null;
}

/** Whether a process runs (a zombie, dead but not yet waited for, does not). */
export function isRunning(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== null && stat.state !== 'Z';
}

function cmdline(pid: number): string | null {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return null;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
