/**
 * `npm run release`: the compiled release artifacts (ADR 0024).
 *
 *   dist/stagedoor-<version>-linux-x64.tar.gz          broker, gateway, agent, CLI, web app
 *   dist/stagedoor-gateway-<version>-linux-x64.tar.gz  the gateway alone: no database or web code
 *
 * Steps: build the web app and the native relay, compile the TypeScript with tsc (imports rewritten
 * to .js), lay out each artifact (the production dependencies copied from this checkout's
 * node_modules), pack, then report sizes and the CLI's start-up CPU time. `--no-measure` skips the
 * CLI figure (the system test uses it).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type ArtifactSpec, stageArtifact } from './layout.ts';
import { medianCpuSeconds, mib, treeBytes } from './measure.ts';

const run = promisify(execFile);
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FILES = path.join(REPO_ROOT, 'release/files');
const DIST = path.join(REPO_ROOT, 'dist');
const STAGE = path.join(DIST, 'stage');

// What a gateway host must never carry (issue 15): the database drivers, the ORM, the web framework, the web app.
export const NOT_ON_A_GATEWAY = ['pg', '@electric-sql/pglite', 'drizzle-orm', 'fastify', 'react', 'react-dom', '@aws-sdk/client-ec2', 'apps/broker', 'apps/web'];

export function artifactSpecs(version: string): { full: ArtifactSpec; gateway: ArtifactSpec } {
  const units = ['stagedoor-broker.service', 'stagedoor-gateway.service', 'stagedoor-agent.service'];
  return {
    full: {
      name: `stagedoor-${version}`,
      workspaces: ['@stagedoor/contract', '@stagedoor/ec2-emulator', '@stagedoor/broker', '@stagedoor/gateway', '@stagedoor/agent', '@stagedoor/cli', '@stagedoor/web'],
      bins: { stagedoor: 'apps/cli/bin/stagedoor.js', 'stagedoor-gateway': 'apps/gateway/bin/stagedoor-gateway.js' },
      units,
      envFiles: ['broker.env', 'gateway.env', 'agent.env'],
    },
    gateway: {
      name: `stagedoor-gateway-${version}`,
      workspaces: ['@stagedoor/contract', '@stagedoor/gateway'],
      bins: { 'stagedoor-gateway': 'apps/gateway/bin/stagedoor-gateway.js' },
      units: ['stagedoor-gateway.service'],
      envFiles: ['gateway.env'],
    },
  };
}

export function tarballName(artifact: string): string {
  return `${artifact}-linux-x64.tar.gz`;
}

async function step(what: string, fn: () => Promise<unknown>): Promise<void> {
  const started = Date.now();
  await fn();
  console.log(`release: ${what} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
}

function webBuildIsStale(): boolean {
  const web = path.join(REPO_ROOT, 'apps/web');
  const newest = (p: string): number => {
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (!st) return 0;
    return st.isDirectory() ? Math.max(st.mtimeMs, ...fs.readdirSync(p).map((e) => newest(path.join(p, e)))) : st.mtimeMs;
  };
  const built = fs.statSync(path.join(web, 'dist/index.html'), { throwIfNoEntry: false })?.mtimeMs ?? 0;
  return Math.max(...['src', 'index.html', 'vite.config.ts', 'package.json'].map((s) => newest(path.join(web, s)))) > built;
}

async function main(argv: string[]): Promise<void> {
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new Error(`release: builds linux-x64 artifacts only (the native relay and argon2 are this machine's); this is ${process.platform}-${process.arch}`);
  const version = (JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const specs = artifactSpecs(version);
  const compiled = path.join(STAGE, 'compiled');
  fs.rmSync(STAGE, { recursive: true, force: true });
  fs.mkdirSync(STAGE, { recursive: true });

  // Only when a source is newer than the build (as the test harness does): during a test run the browser
  // tests read apps/web/dist, and a rebuild empties it first.
  if (webBuildIsStale()) await step('built the web app', () => run('npm', ['run', 'build:web'], { cwd: REPO_ROOT }));
  else console.log('release: the web app build is current (apps/web/dist)');
  await step('built the native relay', () => run(process.execPath, [path.join(REPO_ROOT, 'apps/gateway/native/build.mjs'), '--strict'], { cwd: REPO_ROOT }));
  await step('compiled the TypeScript', () =>
    run(process.execPath, [path.join(REPO_ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(REPO_ROOT, 'release/tsconfig.json'), '--outDir', compiled], { cwd: REPO_ROOT }).catch((err: { stdout?: string }) => {
      throw new Error(`release: tsc failed:\n${err.stdout ?? err}`);
    }),
  );

  const input = { repoRoot: REPO_ROOT, compiledRoot: compiled, filesDir: FILES, stageDir: STAGE, version };
  const roots: Record<'full' | 'gateway', string> = { full: '', gateway: '' };
  for (const kind of ['full', 'gateway'] as const) {
    await step(`laid out ${specs[kind].name}`, async () => {
      roots[kind] = stageArtifact(specs[kind], input);
    });
  }
  const leaks = NOT_ON_A_GATEWAY.filter((p) => fs.existsSync(path.join(roots.gateway, p.startsWith('apps/') ? p : `node_modules/${p}`)));
  if (leaks.length) throw new Error(`release: the gateway artifact carries ${leaks.join(', ')}; check apps/gateway's dependencies`);

  const tarballs: Record<'full' | 'gateway', string> = { full: '', gateway: '' };
  for (const kind of ['full', 'gateway'] as const) {
    tarballs[kind] = path.join(DIST, tarballName(specs[kind].name));
    // Owner and times normalised: the same tree gives the same listing wherever it was built.
    await step(`packed ${path.relative(REPO_ROOT, tarballs[kind])}`, () =>
      run('tar', ['--owner=0', '--group=0', '--numeric-owner', '--sort=name', '-czf', tarballs[kind], '-C', STAGE, specs[kind].name]),
    );
  }

  // The AWS stack's CloudFormation template (deploy/aws, docs/deploy-aws.md): deployable with plain
  // CloudFormation, next to the tarballs its user data installs.
  const awsTemplate = path.join(DIST, 'stagedoor-aws.template.json');
  await step(`synthesized ${path.relative(REPO_ROOT, awsTemplate)}`, () => run('npm', ['run', '--silent', 'synth:aws'], { cwd: REPO_ROOT }));

  const sizes = {
    full: { tarball: fs.statSync(tarballs.full).size, unpacked: treeBytes(roots.full) },
    gateway: { tarball: fs.statSync(tarballs.gateway).size, unpacked: treeBytes(roots.gateway) },
    checkoutNodeModules: treeBytes(path.join(REPO_ROOT, 'node_modules')),
  };
  console.log('\nrelease: sizes');
  console.log(`  full     ${path.basename(tarballs.full)}: ${mib(sizes.full.tarball)} packed, ${mib(sizes.full.unpacked)} unpacked`);
  console.log(`  gateway  ${path.basename(tarballs.gateway)}: ${mib(sizes.gateway.tarball)} packed, ${mib(sizes.gateway.unpacked)} unpacked`);
  console.log(`  today's install (node_modules of a checkout): ${mib(sizes.checkoutNodeModules)}; the gateway artifact is ${((100 * sizes.gateway.unpacked) / sizes.checkoutNodeModules).toFixed(1)}% of it`);

  let cli: { releaseSeconds: number; checkoutSeconds: number } | null = null;
  if (!argv.includes('--no-measure')) {
    // Run from a copy outside the repository, so nothing resolves into the checkout by accident.
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'stagedoor-release-cpu-'));
    try {
      await run('tar', ['-xzf', tarballs.full, '-C', outside]);
      cli = {
        releaseSeconds: await medianCpuSeconds(path.join(outside, specs.full.name, 'bin/stagedoor'), ['--version']),
        checkoutSeconds: await medianCpuSeconds(process.execPath, [path.join(REPO_ROOT, 'apps/cli/bin/stagedoor.js'), '--version']),
      };
    } finally {
      fs.rmSync(outside, { recursive: true, force: true });
    }
    console.log(`\nrelease: CPU time of \`stagedoor --version\` (median of 5, user + system): release ${cli.releaseSeconds.toFixed(2)} s, checkout through tsx ${cli.checkoutSeconds.toFixed(2)} s (target < 0.3 s)`);
  }
  fs.writeFileSync(path.join(DIST, 'release.json'), `${JSON.stringify({ version, tarballs: { full: path.basename(tarballs.full), gateway: path.basename(tarballs.gateway) }, awsTemplate: path.basename(awsTemplate), sizes, cli }, null, 2)}\n`);
  fs.rmSync(compiled, { recursive: true, force: true });
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
