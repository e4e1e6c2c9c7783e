import type { z } from 'zod';
import type { CostReport as CostReportSchema } from '@stagedoor/contract';
import { ApiClient } from '../api-client.ts';
import { CliError } from '../cli-error.ts';

type CostReport = z.infer<typeof CostReportSchema>;
type CostLine = CostReport['total'];

const DAY = 86_400_000;

/** A date the user typed: `2026-11-23`, or a full timestamp; a bare date is midnight UTC. */
export function parseWhen(s: string, name: string): string {
  const v = /^\d{4}-\d{2}-\d{2}$/.test(s) ? `${s}T00:00:00Z` : s;
  const t = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(v) || Number.isNaN(t)) throw new CliError(`--${name}: not a date (use 2026-11-23 or 2026-11-23T09:00:00Z): ${s}`);
  return new Date(t).toISOString();
}

const hours = (h: number) => h.toLocaleString('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
function money(l: CostLine): string {
  const parts = l.cost.map((c) => `${c.amount.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ${c.currency}`);
  if (l.unpricedRunningHours > 0) parts.push(`? (${hours(l.unpricedRunningHours)} h unpriced)`);
  return parts.join(' + ') || '0.00';
}

/** The table `stagedoor report cost` prints (exported for its test). */
export function costTable(r: CostReport): string {
  const head = [r.groupBy === 'instanceType' ? 'instance type' : r.groupBy, 'machines', 'running h', 'stopped h', 'other h', 'always-on h', 'saved h', 'cost'];
  const row = (l: CostLine) => [l.label, String(l.machines), hours(l.runningHours), hours(l.stoppedHours), hours(l.otherHours), hours(l.alwaysOnHours), hours(l.savedHours), money(l)];
  const rows = [head, ...r.groups.map(row), row(r.total)];
  const widths = head.map((_, i) => Math.max(...rows.map((x) => x[i]!.length)));
  const fmt = (x: string[]) => x.map((c, i) => (i === 0 || i === x.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [`cost ${r.from} → ${r.to} by ${r.groupBy}, as of ${r.generatedAt}`, fmt(head), rule, ...r.groups.map((l) => fmt(row(l))), rule, fmt(row(r.total))].join('\n');
}

/** `stagedoor report cost`: the cost report from a broker (admin, operator or auditor). */
export async function reportCost(opts: { url?: string; token?: string; from?: string; to?: string; groupBy: string; json?: boolean }): Promise<void> {
  const to = opts.to ? parseWhen(opts.to, 'to') : new Date().toISOString();
  const from = opts.from ? parseWhen(opts.from, 'from') : new Date(Date.parse(to) - 7 * DAY).toISOString();
  const api = ApiClient.fromOptions(opts);
  const q = new URLSearchParams({ from, to, groupBy: opts.groupBy });
  const r = await api.request<CostReport>('GET', `/api/v1/reports/cost?${q}`);
  console.log(opts.json ? JSON.stringify(r, null, 2) : costTable(r));
}
