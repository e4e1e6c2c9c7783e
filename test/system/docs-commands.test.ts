import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { docFiles, shellBlocks, type DocBlock } from '../support/doc-blocks.ts';
import { freePort, waitFor } from '../support/ports.ts';
import { REPO_ROOT, STAGEDOOR_BIN, spawnStagedoor, type Spawned } from '../support/processes.ts';

/**
 * Every ```sh / ```bash block of README.md and docs/*.md runs against a fresh `stagedoor dev
 * --sandbox`, so the docs cannot drift (issue 16 point 9). A block the test cannot run (installing on
 * a server, another host, placeholders) is preceded by `<!-- docs-test: skip — reason -->`; the
 * skipped ones are listed with their reasons (vitest prints them as skipped tests).
 *
 * How a block runs, as a reader would run it:
 * - bash with `set -eo pipefail`, in a directory of its own per Markdown file; the shell variables a
 *   block sets (`CSRF=…`) are there for the next blocks of the same file, as in one terminal.
 * - `localhost:8080` / `127.0.0.1:8080` (the documented default port) and `:4599` (the sandbox's)
 *   are the test server's free ports. STAGEDOOR_URL is not set: the docs must give the URL.
 * - `curl` fails on an HTTP error (`--fail-with-body`): a documented request the API refuses fails.
 * - README.md starts from nothing, as a fresh clone does. docs/*.md start where the README's quick
 *   start leaves a reader: `cookies` and `$CSRF` from the admin's sign-in, and the CLI signed in as
 *   admin (`stagedoor login`).
 * - `npx stagedoor` is this repository's CLI (the data directory is the server's: admin commands
 *   meet the running server, as they do beside `npm start`).
 */
const ADMIN_PASSWORD = 'choose-a-good-one'; // the README's quick start sets this one
const BLOCK_TIMEOUT_MS = 90_000;

const files = docFiles(REPO_ROOT).map((file) => ({ file, blocks: shellBlocks(file, fs.readFileSync(path.join(REPO_ROOT, file), 'utf8')) })).filter((f) => f.blocks.length);

describe('the shell blocks of README.md and docs/*.md, against a fresh stagedoor dev', () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-docs-'));
  const dataDir = path.join(work, 'data');
  let server: Spawned;
  let port: number;
  let ec2Port: number;

  beforeAll(async () => {
    [port, ec2Port] = [await freePort(), await freePort()];
    server = spawnStagedoor(['dev', '--sandbox'], {
      PORT: String(port),
      STAGEDOOR_SANDBOX_EC2_PORT: String(ec2Port),
      STAGEDOOR_DATA_DIR: dataDir,
      STAGEDOOR_ADMIN_PASSWORD: ADMIN_PASSWORD,
      STAGEDOOR_DEV_GATEWAY_PORTS: 'off', // a fixed range other tests may hold; no documented block needs it
      STAGEDOOR_SECRET_KEY: undefined,
      DATABASE_URL: undefined,
      STAGEDOOR_LOG_LEVEL: 'warn',
    });
    await waitFor('stagedoor dev --sandbox to be ready', async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200 && server.stderr.join('\n').includes('Sandbox:'), 90_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}\n${server.stderr.join('\n')}`);
    });
    // `npx stagedoor` from a directory outside the repository runs this repository's CLI.
    fs.mkdirSync(path.join(work, 'node_modules', '.bin'), { recursive: true });
    fs.symlinkSync(STAGEDOOR_BIN, path.join(work, 'node_modules', '.bin', 'stagedoor'));
    fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'docs-test', private: true }));
  }, 150_000);
  afterAll(async () => {
    await server?.stop();
    const skipped = files.flatMap((f) => f.blocks.filter((b) => b.skip).map((b) => `  ${b.file}:${b.line} — ${b.skip}`));
    console.log(`docs test: ${skipped.length} blocks skipped:\n${skipped.join('\n')}`);
    fs.rmSync(work, { recursive: true, force: true });
  });

  /** What a reader of docs/*.md has done by then: the README's sign-in, for curl and for the CLI. */
  const docsPreamble = () =>
    [
      `curl -s -c cookies -H 'content-type: application/json' -d '{"username":"admin","password":"${ADMIN_PASSWORD}"}' localhost:8080/api/v1/auth/login > .login.json`,
      'CSRF=$(jq -r .csrfToken .login.json)',
      `npx stagedoor login --url http://127.0.0.1:8080 --username admin <<< '${ADMIN_PASSWORD}' > /dev/null`,
    ].join('\n');

  async function runBlock(block: DocBlock, code: string): Promise<void> {
    const dir = path.join(work, block.file.replace(/\W+/g, '-'));
    fs.mkdirSync(dir, { recursive: true });
    // A reader runs the commands at the root of a checkout: paths such as docs/examples/… resolve.
    if (!fs.existsSync(path.join(dir, 'docs'))) fs.symlinkSync(path.join(REPO_ROOT, 'docs'), path.join(dir, 'docs'));
    const local = code.replace(/\b(localhost|127\.0\.0\.1):8080\b/g, `$1:${port}`).replace(/\b(localhost|127\.0\.0\.1):4599\b/g, `$1:${ec2Port}`);
    fs.writeFileSync(path.join(dir, '.block.sh'), `${local}\n`);
    // The variables a block sets are appended to .state (declare -p), for the file's next blocks.
    const runner = [
      'set -eo pipefail',
      '[ -f .state ] && source .state',
      'curl() { command curl --fail-with-body "$@"; }',
      '__before=$(compgen -v | sort)',
      'source ./.block.sh',
      'for __v in $(comm -13 <(echo "$__before") <(compgen -v | sort) | grep -v "^__"); do declare -p "$__v"; done >> .state',
    ].join('\n');
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: work, XDG_CONFIG_HOME: path.join(dir, '.config'), STAGEDOOR_DATA_DIR: dataDir, PATH: `${path.join(work, 'node_modules', '.bin')}:${process.env.PATH}` };
    for (const k of ['STAGEDOOR_URL', 'STAGEDOOR_TOKEN', 'STAGEDOOR_PASSWORD', 'STAGEDOOR_ADMIN_PASSWORD', 'PORT', 'NODE_OPTIONS']) delete env[k];
    const proc = spawn('bash', ['-c', runner], { cwd: dir, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => process.kill(-proc.pid!, 'SIGKILL'), BLOCK_TIMEOUT_MS);
    const exit = await new Promise<number | string>((r) => proc.on('exit', (c, s) => r(c ?? s ?? -1)));
    clearTimeout(timer);
    if (exit !== 0) {
      const why = exit === 'SIGKILL' ? `did not finish within ${BLOCK_TIMEOUT_MS / 1000} s` : `failed with exit ${exit}`;
      throw new Error(`${block.file}:${block.line}: the block ${why}\n--- the block ---\n${code}\n--- stdout ---\n${out.slice(-3000)}\n--- stderr ---\n${err.slice(-3000)}`);
    }
  }

  for (const { file, blocks } of files) {
    describe(file, () => {
      let prepared = file === 'README.md';
      for (const block of blocks) {
        const name = `${block.file}:${block.line}`;
        if (block.skip) {
          it.skip(`${name} — skipped: ${block.skip}`, () => undefined);
          continue;
        }
        it(name, async () => {
          if (!prepared) {
            await runBlock({ ...block, line: 0 }, docsPreamble());
            prepared = true;
          }
          await runBlock(block, block.code);
        });
      }
    });
  }
});
