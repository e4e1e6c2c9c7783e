import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Bytes of the files under a folder (symlinks counted as links, not followed). */
export function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(p);
    else total += fs.lstatSync(p).size;
  }
  return total;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * CPU time (user + system, seconds) of one run of a command, as the shell's `time` reports it for
 * the child: what start-up costs, independent of how busy the machine is (wall time is not).
 */
export async function cpuSeconds(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { stderr } = await run('bash', ['-c', 'TIMEFORMAT="cpu %3U %3S"; time "$@" >/dev/null 2>&1', 'time', command, ...args], { env });
  const m = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(stderr);
  if (!m) throw new Error(`could not read the CPU time of ${command}: ${stderr}`);
  return Number(m[1]) + Number(m[2]);
}

/** Median of `runs` measurements (the first run warms the page cache and is not counted). */
export async function medianCpuSeconds(command: string, args: string[], runs = 5, env?: NodeJS.ProcessEnv): Promise<number> {
  await cpuSeconds(command, args, env);
  const samples: number[] = [];
  for (let i = 0; i < runs; i++) samples.push(await cpuSeconds(command, args, env));
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}
