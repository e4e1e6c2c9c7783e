#!/usr/bin/env node
// Builds the gateway's native relay (relay_thread.c, binding.c) into build/splice_relay.node with the C compiler
// alone: Node-API headers from the running Node (or the node-api-headers package), no node-gyp, no
// Python. A machine without a compiler still installs and runs: the gateway then relays in JavaScript
// and says so when it starts. Run by the root postinstall; `--force` rebuilds.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCES = ['relay_thread.c', 'binding.c'].map((f) => path.join(here, f));
const newestSource = Math.max(...['relay.h', 'relay_thread.c', 'binding.c'].map((f) => fs.statSync(path.join(here, f)).mtimeMs));
const output = path.join(here, 'build', 'splice_relay.node');
const force = process.argv.includes('--force');
const strict = process.argv.includes('--strict');

function headers() {
  const own = path.resolve(path.dirname(process.execPath), '..', 'include', 'node');
  if (fs.existsSync(path.join(own, 'node_api.h'))) return own;
  try {
    return createRequire(import.meta.url)('node-api-headers').include_dir;
  } catch {
    return null;
  }
}

function skip(why) {
  console.warn(`stagedoor: native relay not built (${why}); the gateway will relay in JavaScript`);
  process.exit(strict ? 1 : 0);
}

if (process.platform !== 'linux') skip(`it uses epoll and splice, which ${process.platform} lacks`);
if (!force && fs.existsSync(output) && fs.statSync(output).mtimeMs >= newestSource) process.exit(0);
const include = headers();
if (!include) skip('no Node-API headers found');
fs.mkdirSync(path.dirname(output), { recursive: true });
const cc = process.env.CC || 'cc';
const args = ['-O2', '-g', '-std=gnu11', '-Wall', '-Wextra', ...(strict ? ['-Werror'] : []), '-fPIC', '-shared', '-pthread', '-fvisibility=hidden', '-DNODE_GYP_MODULE_NAME=splice_relay', `-I${include}`, ...SOURCES, '-o', `${output}.tmp`];
const r = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (r.error) skip(`${cc}: ${r.error.message}`);
if (r.status !== 0) skip(`${cc} exited with ${r.status}`);
fs.renameSync(`${output}.tmp`, output);
console.log(`stagedoor: built the native relay (${path.relative(process.cwd(), output)})`);
