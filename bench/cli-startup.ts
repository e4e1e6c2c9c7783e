/**
 * The CLI's start-up cost: CPU time (user + sys, from /usr/bin/time, so the child's own rusage and
 * not the wall clock of a busy machine) of commands that should load almost nothing. Each runs N
 * times (default 5); the table shows the median and the smallest.
 *
 * Run: npm run bench:cli [-- N]
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../apps/cli/bin/stagedoor.js');
const COMMANDS = [['--version'], ['--help'], ['desktops', '--help'], ['dev', '--help']];

async function cpuMs(args: string[]): Promise<number> {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cli-bench-')), 'time');
  try {
    // The CLI's config directory points nowhere useful: `desktops --help` must not read a session anyway.
    await run('/usr/bin/time', ['-f', '%U %S', '-o', out, process.execPath, BIN, ...args], { env: { ...process.env, NODE_OPTIONS: '' } });
    const [user, sys] = fs.readFileSync(out, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
    return Math.round((user! + sys!) * 1000);
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true });
  }
}

const n = Number(process.argv[2] ?? 5);
console.log(`stagedoor start-up, CPU ms (user + sys), ${n} runs each, node ${process.version}, ${os.cpus().length} cores`);
console.log(`${'command'.padEnd(24)} ${'median'.padStart(8)} ${'min'.padStart(8)}`);
for (const args of COMMANDS) {
  const times: number[] = [];
  for (let i = 0; i < n; i++) times.push(await cpuMs(args));
  times.sort((a, b) => a - b);
  console.log(`${args.join(' ').padEnd(24)} ${String(times[Math.floor(n / 2)]).padStart(8)} ${String(times[0]).padStart(8)}`);
}
