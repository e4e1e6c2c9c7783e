/**
 * Issue 19's benchmark matrix: every scenario × standby × seed of `bench/studio-week.ts`, each run in
 * its own process (the week runs through the real broker on PostgreSQL), its output kept in
 * test-artifacts/studio-week/, then one table: billed / ideal, p95 and max wait, cold starts.
 *
 * Run: npm run bench:studio-week -- --matrix [--jobs 2] [--scenarios studio,holiday] [--standbys windows,predictive]
 *      [--seeds 7,8,9] [--report]   (--report: only tabulate the runs already kept)
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const DIR = 'test-artifacts/studio-week';
const scenarios = arg('scenarios', 'studio,crunch,holiday,after-holiday').split(',');
const standbys = arg('standbys', 'windows,flat,predictive').split(',');
const seeds = arg('seeds', '7,8,9').split(',').map(Number);
const jobs = Number(arg('jobs', '2'));
const extra = ['quantile', 'reserve', 'hold', 'lead'].flatMap((k) => (process.argv.includes(`--${k}`) ? [`--${k}`, arg(k, '')] : []));

interface Result {
  scenario: string;
  standby: string;
  seed: number;
  quantile: number | null;
  /** Absent in the results of runs from before the hold window (they stopped surplus at once). */
  hold?: number | null;
  /** Absent in the results of runs from before the start lead (they started one boot ahead). */
  lead?: number | null;
  reserve?: number;
  ratio: number;
  p95: number;
  max: number;
  cold: number;
}

const fileOf = (scenario: string, standby: string, seed: number) => join(DIR, `${scenario}-${standby}${extra.length ? `-${extra.filter((_, i) => i % 2).join('-')}` : ''}-${seed}.txt`);

function run(scenario: string, standby: string, seed: number): Promise<void> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const child = spawn('npx', ['tsx', 'bench/studio-week.ts', '--scenario', scenario, '--standby', standby, '--seed', String(seed), ...extra], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.on('close', () => {
      writeFileSync(fileOf(scenario, standby, seed), Buffer.concat(out));
      process.stderr.write(`done: ${scenario} ${standby} ${seed}\n`);
      resolve();
    });
  });
}

mkdirSync(DIR, { recursive: true });
if (!process.argv.includes('--report')) {
  const todo = scenarios.flatMap((sc) => standbys.flatMap((st) => seeds.map((seed) => [sc, st, seed] as const)));
  let next = 0;
  await Promise.all(Array.from({ length: jobs }, async () => {
    while (next < todo.length) {
      const [sc, st, seed] = todo[next++]!;
      await run(sc, st, seed);
    }
  }));
}

const results: Result[] = [];
for (const f of readdirSync(DIR)) {
  const line = readFileSync(join(DIR, f), 'utf8').split('\n').find((l) => l.startsWith('RESULT '));
  if (line) results.push(JSON.parse(line.slice(7)) as Result);
}
const key = (r: Result) => `${r.scenario} | ${r.standby}${r.quantile !== null ? ` q${r.quantile}` : ''}${r.hold != null ? ` hold ${r.hold}` : ''}${r.quantile !== null ? ` lead ${r.lead ?? 0}` : ''}${r.reserve ? ` reserve ${r.reserve}` : ''}`;
const groups = new Map<string, Result[]>();
for (const r of results) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
const order = (k: string) => scenarios.indexOf(k.split(' | ')[0]!) * 100 + standbys.findIndex((s) => k.split(' | ')[1]!.startsWith(s));
console.log('| scenario | standby | seeds | billed / ideal (each seed) | p95 wait s (each) | max wait s (worst) | cold starts (each) |');
console.log('|---|---|---|---|---|---|---|');
for (const [k, rs] of [...groups.entries()].sort(([a], [b]) => order(a) - order(b))) {
  rs.sort((a, b) => a.seed - b.seed);
  console.log(`| ${k} | ${rs.map((r) => r.seed).join(', ')} | ${rs.map((r) => r.ratio.toFixed(3)).join(' / ')} | ${rs.map((r) => r.p95.toFixed(1)).join(' / ')} | ${Math.max(...rs.map((r) => r.max)).toFixed(0)} | ${rs.map((r) => r.cold).join(' / ')} |`);
}
