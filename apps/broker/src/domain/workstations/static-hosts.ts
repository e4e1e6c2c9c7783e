import { parse } from 'csv-parse/sync';
import { RegisterHost } from '@stagedoor/contract';
import type { z } from 'zod';
import { InvalidInputError, type FieldProblem } from '../errors.ts';

/** A static host's own fields; `maintenance` is the workstation's, set apart. */
export type HostInput = Omit<z.output<typeof RegisterHost>, 'maintenance'>;

/**
 * Parse a static-host CSV (header `name,address,protocols,tags`; protocols like `rdp;ssh:2222`,
 * tags like `team=edit;site=lon`; address an IP or a DNS name). All or nothing: any bad line is reported with its number and
 * field, and no host is imported.
 */
export function parseHostsCsv(csv: string): HostInput[] {
  let records: Record<string, string>[];
  try {
    records = parse(csv, { columns: (h: string[]) => h.map((c) => c.trim().toLowerCase()), skip_empty_lines: true, trim: true, bom: true });
  } catch (err) {
    throw new InvalidInputError(`the CSV cannot be read: ${(err as Error).message}`, [{ path: 'csv', message: (err as Error).message }]);
  }
  if (records.length === 0) throw new InvalidInputError('the CSV has no hosts', [{ path: 'csv', message: 'no rows after the header' }]);
  const first = records[0]!;
  for (const col of ['name', 'address']) {
    if (!(col in first)) throw new InvalidInputError(`the CSV header lacks the "${col}" column`, [{ path: 'csv', message: `header must include name,address (protocols,tags optional)` }]);
  }
  const problems: FieldProblem[] = [];
  const hosts: HostInput[] = [];
  const names = new Set<string>();
  records.forEach((r, i) => {
    const line = i + 2; // 1-based, after the header
    const candidate = {
      name: r.name,
      address: r.address,
      ...(r.protocols ? { protocols: splitList(r.protocols).map(protocolOf) } : {}),
      ...(r.tags ? { tags: Object.fromEntries(splitList(r.tags).map((t) => [t.split('=')[0]!.trim(), t.slice(t.indexOf('=') + 1).trim()])) } : {}),
    };
    const parsed = RegisterHost.safeParse(candidate);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ path: `csv line ${line}: ${issue.path.join('.') || 'row'}`, message: issue.message });
      return;
    }
    if (names.has(parsed.data.name.toLowerCase())) problems.push({ path: `csv line ${line}: name`, message: `"${parsed.data.name}" appears twice` });
    names.add(parsed.data.name.toLowerCase());
    hosts.push(parsed.data);
  });
  if (problems.length) {
    throw new InvalidInputError(`the CSV has ${problems.length} problem(s); nothing was imported: ${problems.slice(0, 5).map((p) => `${p.path}: ${p.message}`).join('; ')}`, problems);
  }
  return hosts;
}

function splitList(s: string): string[] {
  return s.split(';').map((x) => x.trim()).filter(Boolean);
}

function protocolOf(entry: string): { protocol: string; port?: number } {
  const [protocol, port] = entry.split(':');
  return port === undefined ? { protocol: protocol!.toLowerCase() } : { protocol: protocol!.toLowerCase(), port: Number(port) };
}
