#!/usr/bin/env node
// Reads .ci/packages (what the tests run or load → its Debian package) and tells what is missing on
// this machine. Plain JavaScript with no dependencies: `.ci/run` runs it before `npm ci`, and the test
// run's global setup runs it too (test/support/packages-check.ts), so both use one table and one check.
//
//   node .ci/packages.mjs check       lists what is missing, with its package; exits 1 if anything is
//   node .ci/packages.mjs missing     prints the Debian packages to install, one a line (none: nothing)
//   node .ci/packages.mjs entries     prints the table as JSON, with where each line was found (for its tests)
//   --table FILE                      reads another table (the checker's own tests)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const DEFAULT_TABLE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'packages');
const COMMAND_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];
const NOT_DEBIAN = '-';

/** The table's lines: `what package why…`; blank lines and `#` comments are skipped. */
export function readTable(file = DEFAULT_TABLE) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((line, i) => ({ line: line.trim(), number: i + 1 }))
    .filter(({ line }) => line && !line.startsWith('#'))
    .map(({ line, number }) => {
      const [what, pkg, ...why] = line.split(/\s+/);
      if (!what || !pkg) throw new Error(`${file}:${number}: expected "what package why", got "${line}"`);
      if (what.includes('/') && !what.startsWith('/')) throw new Error(`${file}:${number}: a path must be absolute: ${what}`);
      return { what, package: pkg, why: why.join(' ') };
    });
}

/** Where `what` is on this machine, or null: a command on PATH (or an sbin), or a path with `*` segments. */
export function locate(what) {
  if (what.startsWith('/')) return matchPath(what);
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean).concat(COMMAND_DIRS);
  for (const dir of dirs) {
    const candidate = path.join(dir, what);
    if (isExecutableFile(candidate)) return candidate;
  }
  return null;
}

function matchPath(pattern) {
  let found = ['/'];
  for (const segment of pattern.split('/').filter(Boolean)) {
    const next = [];
    for (const dir of found) {
      if (!segment.includes('*')) {
        next.push(path.join(dir, segment));
        continue;
      }
      const re = new RegExp(`^${segment.split('*').map(escapeRegExp).join('[^/]*')}$`);
      let names = [];
      try {
        names = fs.readdirSync(dir);
      } catch {
        // not a directory, or not there
      }
      for (const name of names.filter((n) => re.test(n)).sort()) next.push(path.join(dir, name));
    }
    found = next;
  }
  return found.find((p) => fs.existsSync(p)) ?? null;
}

function isExecutableFile(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function escapeRegExp(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The table's lines that this machine lacks. */
export function missingEntries(table) {
  return table.filter((entry) => locate(entry.what) === null);
}

/** One line a missing entry: what, from which package, and who needs it. */
export function describeMissing(entry) {
  const from = entry.package === NOT_DEBIAN ? 'comes with Node.js' : `Debian package ${entry.package}`;
  return `missing: ${entry.what} (${from}) — ${entry.why}`;
}

function main(argv) {
  const tableAt = argv.indexOf('--table');
  const table = readTable(tableAt >= 0 ? argv[tableAt + 1] : undefined);
  const command = argv.find((a, i) => !a.startsWith('--') && argv[i - 1] !== '--table') ?? 'check';
  const missing = missingEntries(table);
  if (command === 'missing') {
    const packages = [...new Set(missing.map((e) => e.package).filter((p) => p !== NOT_DEBIAN))];
    if (packages.length) console.log(packages.join('\n'));
    return 0;
  }
  if (command === 'entries') {
    console.log(JSON.stringify(table.map((entry) => ({ ...entry, found: locate(entry.what) }))));
    return 0;
  }
  if (command !== 'check') {
    console.error(`usage: node .ci/packages.mjs [check | missing | entries] [--table FILE]`);
    return 2;
  }
  if (!missing.length) {
    console.log(`packages: all ${table.length} programs and files the tests need are here`);
    return 0;
  }
  for (const entry of missing) console.log(describeMissing(entry));
  const packages = [...new Set(missing.map((e) => e.package).filter((p) => p !== NOT_DEBIAN))];
  if (packages.length) console.log(`Install them as root: \`sudo npm run test:deps\` (or: apt-get install --no-install-recommends ${packages.join(' ')})`);
  return 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main(process.argv.slice(2));
