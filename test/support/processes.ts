import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordProcessGroup } from './leftovers.ts';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const STAGEDOOR_BIN = path.join(REPO_ROOT, 'apps/cli/bin/stagedoor.js');

export interface Spawned {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  exited: Promise<number | string>;
  /** Signal the whole process group (npm → sh → node), then wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

const live = new Set<Spawned>();

/**
 * Start a command in its own process group, collecting its output by line. Every process started
 * here is killed when the test process exits, even after a failed assertion.
 */
export function spawnProcess(command: string, args: string[], env: Record<string, string | undefined>, cwd = REPO_ROOT): Spawned {
  const proc = spawn(command, args, { cwd, env: { ...process.env, ...env }, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const stderr: string[] = [];
  collect(proc.stdout!, stdout);
  collect(proc.stderr!, stderr);
  // Recorded for the run's clean-up, should this process die without running its exit hook (leftovers.ts).
  const forget = proc.pid ? recordProcessGroup(proc.pid, [command, ...args].join(' ').slice(0, 160)) : () => undefined;
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  void exited.then(forget);
  const spawned: Spawned = {
    proc,
    stdout,
    stderr,
    exited,
    stop: async (signal = 'SIGTERM') => {
      try {
        process.kill(-proc.pid!, signal);
      } catch {
        // already gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-proc.pid!, 'SIGKILL');
        } catch {
          // gone
        }
      }, 10_000);
      const code = await exited;
      clearTimeout(timer);
      live.delete(spawned);
      return code;
    },
  };
  live.add(spawned);
  void exited.then(() => live.delete(spawned));
  return spawned;
}

export function spawnStagedoor(args: string[], env: Record<string, string | undefined>): Spawned {
  return spawnProcess(process.execPath, [STAGEDOOR_BIN, ...args], env);
}

function collect(stream: NodeJS.ReadableStream, into: string[]): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      into.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  stream.on('end', () => {
    if (buf) into.push(buf);
  });
}

process.on('exit', () => {
  for (const s of live) {
    try {
      process.kill(-s.proc.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** JSON log lines a process wrote to stdout. */
export function jsonLines(lines: string[]): Record<string, unknown>[] {
  return lines.flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return [];
    }
  });
}
