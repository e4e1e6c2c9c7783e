import fs from 'node:fs';
import path from 'node:path';
import { copyPackage, dependencyClosure, readManifest } from './closure.ts';

/**
 * What goes into an artifact. The release keeps the repository's relative layout (apps/broker/src/…,
 * apps/web/dist, apps/gateway/native/build, node_modules/…) so that every path the code finds from
 * `import.meta.url` (migrations, the web build, the native relay, the relay worker) holds unchanged.
 */
export interface Workspace {
  /** Folder in the repository, e.g. apps/broker. */
  dir: string;
  /** Asset folders or files copied as they are (beside the compiled src/). */
  assets: string[];
  /** Only its built assets ship: no compiled code and none of its dependencies (the web app's React is in its build). */
  assetsOnly?: boolean;
}

export const WORKSPACES: Record<string, Workspace> = {
  '@stagedoor/contract': { dir: 'packages/contract', assets: [] },
  '@stagedoor/ec2-emulator': { dir: 'packages/ec2-emulator', assets: [] },
  '@stagedoor/broker': { dir: 'apps/broker', assets: ['src/db/migrations'] },
  '@stagedoor/gateway': { dir: 'apps/gateway', assets: ['native/build/splice_relay.node'] },
  '@stagedoor/agent': { dir: 'apps/agent', assets: [] },
  '@stagedoor/cli': { dir: 'apps/cli', assets: [] },
  // Only the built console and portal (ADR 0009), and the page shown when there is no build.
  '@stagedoor/web': { dir: 'apps/web', assets: ['dist', 'static'], assetsOnly: true },
};

/** Run-time tools the compiled release does not need (tsx runs TypeScript in a checkout, ADR 0001). */
const NOT_SHIPPED = new Set(['tsx']);

export interface ArtifactSpec {
  /** Top folder inside the tarball, e.g. stagedoor-0.1.0. */
  name: string;
  workspaces: string[];
  /** bin/<name> → module (relative to the artifact root) it runs. */
  bins: Record<string, string>;
  units: string[];
  envFiles: string[];
}

export interface StageInput {
  repoRoot: string;
  /** Where tsc wrote the compiled tree (same relative paths as the repository). */
  compiledRoot: string;
  filesDir: string;
  stageDir: string;
  version: string;
}

/** Build one artifact's tree under stageDir/<name>. Returns its root. */
export function stageArtifact(spec: ArtifactSpec, input: StageInput): string {
  const root = path.join(input.stageDir, spec.name);
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  for (const name of spec.workspaces) stageWorkspace(name, root, input);
  linkWorkspaces(spec.workspaces, root);

  const starts = spec.workspaces.filter((name) => !WORKSPACES[name]!.assetsOnly).map((name) => {
    const dir = path.join(input.repoRoot, WORKSPACES[name]!.dir);
    return { fromDir: dir, deps: Object.keys(readManifest(dir).dependencies ?? {}) };
  });
  const packages = dependencyClosure(input.repoRoot, starts, (n) => n.startsWith('@stagedoor/') || NOT_SHIPPED.has(n));
  for (const rel of packages) copyPackage(path.join(input.repoRoot, rel), path.join(root, rel));

  fs.mkdirSync(path.join(root, 'bin'));
  for (const [bin, target] of Object.entries(spec.bins)) {
    const file = path.join(root, 'bin', bin);
    // A plain module import: node resolves everything relative to the real file, wherever the tree lies.
    fs.writeFileSync(file, `#!/usr/bin/env node\n// Stagedoor ${input.version}, compiled release (ADR 0024).\nawait import('../${target}');\n`, { mode: 0o755 });
  }
  fs.mkdirSync(path.join(root, 'systemd'));
  for (const unit of spec.units) fs.copyFileSync(path.join(input.filesDir, 'systemd', unit), path.join(root, 'systemd', unit));
  fs.mkdirSync(path.join(root, 'env'));
  for (const env of spec.envFiles) fs.copyFileSync(path.join(input.filesDir, 'env', env), path.join(root, 'env', env));
  fs.copyFileSync(path.join(input.filesDir, 'install.sh'), path.join(root, 'install.sh'));
  fs.chmodSync(path.join(root, 'install.sh'), 0o755);
  fs.copyFileSync(path.join(input.repoRoot, 'LICENSE'), path.join(root, 'LICENSE'));
  fs.writeFileSync(path.join(root, 'VERSION'), `${input.version}\n`);
  fs.writeFileSync(path.join(root, 'package.json'), `${JSON.stringify({ name: spec.name, version: input.version, private: true, type: 'module' }, null, 2)}\n`);
  return root;
}

function stageWorkspace(name: string, root: string, input: StageInput): void {
  const ws = WORKSPACES[name];
  if (!ws) throw new Error(`release: unknown workspace ${name}`);
  const from = path.join(input.repoRoot, ws.dir);
  const to = path.join(root, ws.dir);
  fs.mkdirSync(to, { recursive: true });
  const compiledSrc = path.join(input.compiledRoot, ws.dir, 'src');
  if (!ws.assetsOnly) fs.cpSync(compiledSrc, path.join(to, 'src'), { recursive: true });
  for (const asset of ws.assets) {
    const src = path.join(from, asset);
    if (!fs.existsSync(src)) throw new Error(`release: ${path.join(ws.dir, asset)} is missing (the web build or the native relay build failed?)`);
    fs.cpSync(src, path.join(to, asset), { recursive: true });
  }
  // The checkout's bins start tsx; the release's import the compiled modules directly.
  const binDir = path.join(from, 'bin');
  if (fs.existsSync(binDir)) {
    fs.mkdirSync(path.join(to, 'bin'));
    for (const file of fs.readdirSync(binDir).filter((f) => f.endsWith('.js'))) {
      fs.writeFileSync(path.join(to, 'bin', file), withoutTsx(fs.readFileSync(path.join(binDir, file), 'utf8')), { mode: 0o755 });
    }
  }
  fs.writeFileSync(path.join(to, 'package.json'), `${JSON.stringify(releaseManifest(readManifest(from) as Record<string, unknown>), null, 2)}\n`);
}

/** `register()` of tsx gone, `../src/x.ts` imported as `../src/x.js`. */
export function withoutTsx(source: string): string {
  const out = source
    .split('\n')
    .filter((line) => !/^import \{ register \} from 'tsx\/esm\/api';$/.test(line.trim()) && line.trim() !== 'register();')
    .join('\n')
    .replace(/(['"])(\.\.?\/[^'"]+)\.ts\1/g, '$1$2.js$1');
  if (/tsx/.test(out.replace(/^\/\/.*$/gm, ''))) throw new Error('release: a bin still refers to tsx after rewriting; update release/layout.ts withoutTsx');
  return out;
}

/** The workspace's package.json with exports pointing at the compiled files and no dev-only fields. */
export function releaseManifest(m: Record<string, unknown>): Record<string, unknown> {
  const js = (v: unknown): unknown =>
    typeof v === 'string' ? v.replace(/\.ts$/, '.js') : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, js(x)])) : v;
  const { scripts: _scripts, devDependencies: _dev, ...rest } = m;
  return { ...rest, ...(rest.exports ? { exports: js(rest.exports) } : {}), ...(rest.main ? { main: js(rest.main) } : {}) };
}

/** node_modules/@stagedoor/<x> → the workspace folder, as npm links them in a checkout. */
function linkWorkspaces(names: string[], root: string): void {
  const scope = path.join(root, 'node_modules', '@stagedoor');
  fs.mkdirSync(scope, { recursive: true });
  for (const name of names) {
    const ws = WORKSPACES[name]!;
    fs.symlinkSync(path.relative(scope, path.join(root, ws.dir)), path.join(scope, name.slice('@stagedoor/'.length)));
  }
}
