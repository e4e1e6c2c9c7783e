import fs from 'node:fs';
import path from 'node:path';

/**
 * The production dependencies of a set of workspace packages, as installed in this checkout's
 * node_modules: every package reached through `dependencies` and `optionalDependencies` (and peers
 * that are not optional), resolved the way Node resolves them. The result is a list of package
 * directories relative to the repository root, so copying each to the same relative place in the
 * release keeps Node's resolution identical to the checkout's, nested copies included.
 */
export interface ClosureStart {
  /** Directory of a workspace package (its own node_modules is searched first). */
  fromDir: string;
  deps: string[];
}

interface Manifest {
  name?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

export function readManifest(dir: string): Manifest {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Where Node would find `name` when required from a file in `fromDir`, or null. */
export function resolvePackageDir(repoRoot: string, name: string, fromDir: string): string | null {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') {
      const candidate = path.join(dir, 'node_modules', name);
      if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    }
    if (dir === repoRoot || dir === path.dirname(dir)) return null;
  }
}

/**
 * Walk the dependency graph. `exclude` names packages left out on purpose (the workspace's own,
 * linked separately, and run-time tools the compiled release no longer needs, such as tsx).
 */
export function dependencyClosure(repoRoot: string, starts: ClosureStart[], exclude: (name: string) => boolean): string[] {
  const found = new Set<string>();
  const queue: { name: string; fromDir: string; optional: boolean }[] = starts.flatMap((s) => s.deps.map((name) => ({ name, fromDir: s.fromDir, optional: false })));
  while (queue.length) {
    const { name, fromDir, optional } = queue.shift()!;
    if (exclude(name)) continue;
    const dir = resolvePackageDir(repoRoot, name, fromDir);
    if (!dir) {
      // Optional dependencies for other platforms (e.g. @node-rs/argon2-darwin-arm64) are not installed.
      if (optional) continue;
      throw new Error(`release: ${name} (needed by ${path.relative(repoRoot, fromDir) || 'the workspace'}) is not installed; run npm ci first`);
    }
    const rel = path.relative(repoRoot, fs.realpathSync(dir));
    if (rel.startsWith('..') || found.has(rel)) continue;
    found.add(rel);
    const m = readManifest(dir);
    const next = (deps: Record<string, string> | undefined, opt: (n: string) => boolean) => {
      for (const n of Object.keys(deps ?? {})) queue.push({ name: n, fromDir: dir, optional: opt(n) });
    };
    next(m.dependencies, () => false);
    next(m.optionalDependencies, () => true);
    // Peers that are not optional must be present for the package to load; optional ones (drizzle-orm
    // names every database driver) come in only when something else depends on them.
    next(
      Object.fromEntries(Object.entries(m.peerDependencies ?? {}).filter(([n]) => !m.peerDependenciesMeta?.[n]?.optional)),
      () => true,
    );
  }
  return [...found].sort();
}

// Type declarations, source maps and documentation are not needed at run time; licences stay.
const PRUNED = /(\.d\.[cm]?ts|\.map|\.md|\.markdown|\.tsbuildinfo)$/i;
const KEPT = /^(licen[cs]e|notice|copying)/i;

/** Copy one package directory into the release, without its nested node_modules (copied on their own if needed). */
export function copyPackage(src: string, dest: string): void {
  fs.cpSync(src, dest, {
    recursive: true,
    dereference: false,
    filter: (from) => {
      const rel = path.relative(src, from);
      if (rel === 'node_modules' || rel.startsWith(`node_modules${path.sep}`)) return false;
      const base = path.basename(from);
      return KEPT.test(base) || !PRUNED.test(base);
    },
  });
}
