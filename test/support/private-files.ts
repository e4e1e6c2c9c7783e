import fs from 'node:fs';
import path from 'node:path';

/** Everything under `dir` (itself included) that the group or other users may read, write or enter, as "mode path". */
export function openToOthers(dir: string): string[] {
  const out: string[] = [];
  const check = (p: string) => {
    const mode = fs.lstatSync(p).mode;
    if (mode & 0o077) out.push(`${(mode & 0o777).toString(8)} ${path.relative(dir, p) || '.'}`);
  };
  check(dir);
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) check(path.join(entry.parentPath, entry.name));
  return out;
}
