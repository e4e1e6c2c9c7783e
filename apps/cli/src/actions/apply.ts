import fs from 'node:fs';
import { parseDocument } from 'yaml';
import { ApiClient } from '../api-client.ts';
import { CliError } from '../cli-error.ts';

interface ApplyResult {
  dryRun: boolean;
  changes: { kind: string; name: string; action: 'create' | 'update' | 'delete' | 'unchanged'; fields: string[] }[];
  summary: { create: number; update: number; delete: number; unchanged: number };
}

/**
 * `stagedoor apply -f site.yaml`: the studio as code. The file is read and checked here (YAML
 * syntax with line numbers, `${VAR}` from the environment for secrets), then the broker plans the
 * change (a dry run), this prints it, and — unless --dry-run — the broker applies it in one
 * transaction. A second apply of the same file prints no changes.
 */
export async function apply(opts: { file: string; dryRun?: boolean; url?: string; token?: string }): Promise<void> {
  const document = readSiteFile(opts.file);
  const api = ApiClient.fromOptions(opts);
  const plan = await api.request<ApplyResult>('POST', '/api/v1/apply', { document, dryRun: true });
  printPlan(plan);
  const pending = plan.summary.create + plan.summary.update;
  if (opts.dryRun) return void console.log('Dry run: nothing was changed.');
  if (pending === 0) return void console.log('No changes.');
  const done = await api.request<ApplyResult>('POST', '/api/v1/apply', { document, dryRun: false });
  console.log(`Applied: ${done.summary.create} created, ${done.summary.update} updated.`);
}

export function readSiteFile(file: string): unknown {
  if (!fs.existsSync(file)) throw new CliError(`no such file: ${file}`);
  const doc = parseDocument(fs.readFileSync(file, 'utf8'), { prettyErrors: true });
  if (doc.errors.length) throw new CliError(`${file} is not valid YAML:\n${doc.errors.map((e) => `  ${e.message}`).join('\n')}`);
  // ${VAR} in a value takes it from the environment, so secrets stay out of files kept in version
  // control. Only values are expanded (never comments or keys), and the result is never re-parsed.
  const missing = new Set<string>();
  const expand = (v: unknown): unknown => {
    if (typeof v === 'string') {
      return v.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_m, name: string) => {
        const value = process.env[name];
        if (value === undefined) missing.add(name);
        return value ?? '';
      });
    }
    if (Array.isArray(v)) return v.map(expand);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x)]));
    return v;
  };
  const data = expand(doc.toJS() ?? {});
  if (missing.size) throw new CliError(`${file} uses environment variables that are not set: ${[...missing].join(', ')}`);
  return data;
}

function printPlan(r: ApplyResult): void {
  const sign = { create: '+', update: '~', delete: '-', unchanged: '=' } as const;
  for (const c of r.changes.filter((c) => c.action !== 'unchanged')) {
    console.log(`${sign[c.action]} ${c.action} ${c.kind} ${c.name}${c.fields.length ? `: ${c.fields.join(', ')}` : ''}`);
  }
  console.log(`Plan: ${r.summary.create} to create, ${r.summary.update} to update, ${r.summary.unchanged} unchanged.`);
}
