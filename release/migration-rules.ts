/**
 * Migrations only add within a minor version, so brokers of two versions can share one database
 * during a rolling update (docs/operations.md, "Upgrades"). This finds the statements that would
 * break the older brokers still running, unless they are the second step of the documented two-step:
 *
 *   1. expand (release X.Y): add the new table or column; X.Y writes both and reads only the new one.
 *   2. contract (X.Y+1 or later): drop or rename the old one. The migration says so, per object, in
 *      a comment line `-- two-step: <table>[.<column>] unused since X.Y`, and X.Y is a minor version
 *      before the one being built (by then every broker that read the old object is gone).
 *   Making a column NOT NULL is the same shape: every broker since X.Y writes it, then
 *   `-- two-step: <table>.<column> written since X.Y` in a later minor version.
 */
export interface Finding {
  /** `table` or `table.column`, as the SQL names it (without quotes). */
  object: string;
  what: 'drops a table' | 'drops a column' | 'renames a table' | 'renames a column' | 'changes a column type' | 'adds a NOT NULL column without a default' | 'makes a column NOT NULL';
}

export interface Problem extends Finding {
  message: string;
}

const NAME = String.raw`"?[\w$]+"?(?:\."?[\w$]+"?)?`;
const unquote = (s: string) => s.replace(/"/g, '').replace(/^public\./, '');

/** The SQL without comments and string bodies, so a word in a comment or a literal is not a statement. */
function code(sql: string): string {
  return sql
    .replace(/--[^\n]*/g, ' ')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/'(?:[^']|'')*'/g, "''");
}

/** Every statement of the migration that old brokers could not live with. */
export function findBreakingChanges(sql: string): Finding[] {
  const text = code(sql);
  const out: Finding[] = [];
  for (const m of text.matchAll(new RegExp(String.raw`\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(${NAME}(?:\s*,\s*${NAME})*)`, 'gi'))) {
    for (const t of m[1]!.split(',')) out.push({ object: unquote(t.trim()), what: 'drops a table' });
  }
  for (const m of text.matchAll(new RegExp(String.raw`\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(${NAME})\s+([^;]*)`, 'gi'))) {
    const table = unquote(m[1]!);
    // One ALTER TABLE may carry several actions separated by commas (outside parentheses).
    for (const action of splitActions(m[2]!)) {
      let a: RegExpExecArray | null;
      if ((a = new RegExp(String.raw`^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(${NAME})`, 'i').exec(action)) && !/^DROP\s+(CONSTRAINT|DEFAULT|NOT\s+NULL|IDENTITY|EXPRESSION)\b/i.test(action)) {
        out.push({ object: `${table}.${unquote(a[1]!)}`, what: 'drops a column' });
      } else if (/^RENAME\s+TO\b/i.test(action)) {
        out.push({ object: table, what: 'renames a table' });
      } else if ((a = new RegExp(String.raw`^RENAME\s+(?:COLUMN\s+)?(${NAME})\s+TO\b`, 'i').exec(action)) && !/^RENAME\s+CONSTRAINT\b/i.test(action)) {
        out.push({ object: `${table}.${unquote(a[1]!)}`, what: 'renames a column' });
      } else if ((a = new RegExp(String.raw`^ALTER\s+(?:COLUMN\s+)?(${NAME})\s+(?:SET\s+DATA\s+)?TYPE\b`, 'i').exec(action))) {
        out.push({ object: `${table}.${unquote(a[1]!)}`, what: 'changes a column type' });
      } else if ((a = new RegExp(String.raw`^ALTER\s+(?:COLUMN\s+)?(${NAME})\s+SET\s+NOT\s+NULL\b`, 'i').exec(action))) {
        out.push({ object: `${table}.${unquote(a[1]!)}`, what: 'makes a column NOT NULL' });
      } else if ((a = new RegExp(String.raw`^ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(${NAME})\s`, 'i').exec(action)) && !/^ADD\s+(CONSTRAINT|PRIMARY|UNIQUE|CHECK|FOREIGN)\b/i.test(action)) {
        // An older broker's INSERT does not name the new column: NOT NULL needs a default (or generation).
        if (/\bNOT\s+NULL\b/i.test(action) && !/\b(DEFAULT|GENERATED)\b/i.test(action)) out.push({ object: `${table}.${unquote(a[1]!)}`, what: 'adds a NOT NULL column without a default' });
      }
    }
  }
  return out;
}

function splitActions(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) parts.push(cur.trim());
  return parts;
}

/** `-- two-step: <object> unused|written since X.Y` lines: object → [major, minor]. */
export function twoStepMarkers(sql: string): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>();
  for (const m of sql.matchAll(/^--\s*two-step:\s*(\S+)\s+(?:unused|written)\s+since\s+(\d+)\.(\d+)\s*$/gim)) out.set(unquote(m[1]!), [Number(m[2]), Number(m[3])]);
  return out;
}

/**
 * The problems of one migration built into `version` (the workspace's package.json version): each
 * breaking statement without a marker, or with a marker whose minor version is not before this one.
 */
export function checkMigration(sql: string, version: string): Problem[] {
  const [major, minor] = version.split('.').map(Number) as [number, number];
  const markers = twoStepMarkers(sql);
  const problems: Problem[] = [];
  for (const f of findBreakingChanges(sql)) {
    const marker = markers.get(f.object);
    if (f.what.startsWith('adds')) {
      // No marker helps: the older broker does write this table, and its INSERT does not name the new column.
      problems.push({ ...f, message: `${f.what} (${f.object}): older brokers still INSERT without it during a rolling update; add it with a DEFAULT (or nullable) and make it NOT NULL in a later minor version` });
    } else if (!marker) {
      problems.push({ ...f, message: `${f.what} (${f.object}) without the two-step: add the new object in one release, stop using the old one, and change it in a later minor version with a line \`-- two-step: ${f.object} unused since <that earlier X.Y>\` (docs/operations.md, "Upgrades")` });
    } else if (marker[0] > major || (marker[0] === major && marker[1] >= minor)) {
      problems.push({ ...f, message: `${f.what} (${f.object}) is marked as of ${marker.join('.')}, which is not before ${major}.${minor}: brokers of ${marker.join('.')} may still run beside this one; do it in a later minor version` });
    }
  }
  return problems;
}
