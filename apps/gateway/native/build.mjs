#!/usr/bin/env node
// Builds the gateway's native relay (relay_thread.c, binding.c) into build/splice_relay.node with the C compiler
// alone: Node-API headers from the running Node (or the node-api-headers package), no node-gyp, no
// Python. A machine without a compiler still installs and runs: the gateway then relays in JavaScript
// and says so when it starts. Run by the root postinstall; `--force` rebuilds.
//
// Hardened like a distribution package (stack protector, fortified libc calls, full RELRO). With
// STAGEDOOR_RELAY_SANITIZE=address,undefined it builds for AddressSanitizer/UBSan instead (see
// docs/gateway.md, "The native relay"); the flags of the last build are kept beside it, so the next
// ordinary build replaces a sanitized one.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const SOURCES = ['relay_thread.c', 'linger.c', 'tls_relay.c', 'ws_relay.c', 'ssh_relay.c', 'ssh_kex.c', 'binding.c'].map((f) => path.join(here, f));
const newestSource = Math.max(...['relay.h', 'relay_thread.c', 'linger.c', 'tls_relay.c', 'ws_relay.c', 'ssh_relay.c', 'ssh_kex.c', 'binding.c', 'build.mjs'].map((f) => fs.statSync(path.join(here, f)).mtimeMs));
const output = path.join(here, 'build', 'splice_relay.node');
const flagsFile = `${output}.flags`;
const force = process.argv.includes('--force');
const strict = process.argv.includes('--strict');
const sanitize = process.env.STAGEDOOR_RELAY_SANITIZE ?? '';

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

// -D_FORTIFY_SOURCE needs optimisation (-O1 or more); -U first: some compilers define it already.
const HARDENING = ['-fstack-protector-strong', '-U_FORTIFY_SOURCE', '-D_FORTIFY_SOURCE=2', '-Wl,-z,relro,-z,now'];
const SANITIZERS = sanitize ? [`-fsanitize=${sanitize}`, '-fno-omit-frame-pointer', '-fno-sanitize-recover=undefined'] : [];
const variant = ['-O2', '-g', '-std=gnu11', '-Wall', '-Wextra', '-Wformat=2', ...(sanitize ? SANITIZERS : HARDENING)];

if (process.platform !== 'linux') skip(`it uses epoll and splice, which ${process.platform} lacks`);
const built = fs.existsSync(output) && fs.existsSync(flagsFile) ? fs.readFileSync(flagsFile, 'utf8') : null;
if (!force && built === variant.join(' ') && fs.statSync(output).mtimeMs >= newestSource) process.exit(0);
const include = headers();
if (!include) skip('no Node-API headers found');
fs.mkdirSync(path.dirname(output), { recursive: true });
const cc = process.env.CC || 'cc';
const args = [...variant, ...(strict ? ['-Werror'] : []), '-fPIC', '-shared', '-pthread', '-fvisibility=hidden', '-DNODE_GYP_MODULE_NAME=splice_relay', `-I${include}`, ...SOURCES, '-o', `${output}.tmp`];
const r = spawnSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
if (r.error) skip(`${cc}: ${r.error.message}`);
if (r.status !== 0) skip(`${cc} exited with ${r.status}`);
fs.renameSync(`${output}.tmp`, output);
fs.writeFileSync(flagsFile, variant.join(' '));
console.log(`stagedoor: built the native relay${sanitize ? ` with -fsanitize=${sanitize}` : ''} (${path.relative(process.cwd(), output)})`);
