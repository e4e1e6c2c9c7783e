// The EC2 Query protocol flattens lists into numbered keys: `InstanceId.1`,
// `Filter.2.Value.3`, `TagSpecification.1.Tag.4.Key`. QueryParams reads them back.

import { invalidParameterValue, missingParameter } from './errors.ts';
import type { Tag } from './types.ts';

export interface Filter {
  name: string;
  values: string[];
}

export class QueryParams {
  private readonly map: Map<string, string>;

  constructor(entries: Iterable<[string, string]>) {
    this.map = new Map(entries);
  }

  static fromSearchParams(...sources: URLSearchParams[]): QueryParams {
    const entries: [string, string][] = [];
    for (const source of sources) for (const entry of source) entries.push(entry);
    return new QueryParams(entries);
  }

  has(name: string): boolean {
    return this.map.has(name);
  }

  get(name: string): string | undefined {
    return this.map.get(name);
  }

  /** A parameter that must be present and non-empty. */
  require(name: string): string {
    const value = this.map.get(name);
    if (value === undefined || value === '') throw missingParameter(name);
    return value;
  }

  int(name: string): number | undefined {
    const raw = this.map.get(name);
    if (raw === undefined) return undefined;
    if (!/^-?\d+$/.test(raw)) throw invalidParameterValue(`Invalid value '${raw}' for ${name}`);
    return Number(raw);
  }

  bool(name: string): boolean | undefined {
    const raw = this.map.get(name);
    if (raw === undefined) return undefined;
    const lowered = raw.toLowerCase();
    if (lowered === 'true') return true;
    if (lowered === 'false') return false;
    throw invalidParameterValue(`Invalid value '${raw}' for ${name}`);
  }

  /** Values of `Prefix.1`, `Prefix.2`, … in index order. */
  list(prefix: string): string[] {
    return this.indexed(prefix).map((i) => this.map.get(`${prefix}.${i}`) ?? '');
  }

  /** Sub-parameters of `Prefix.N.*`, one QueryParams per N, in index order. */
  structs(prefix: string): QueryParams[] {
    const groups = new Map<number, [string, string][]>();
    const head = `${prefix}.`;
    for (const [key, value] of this.map) {
      if (!key.startsWith(head)) continue;
      const rest = key.slice(head.length);
      const dot = rest.indexOf('.');
      if (dot <= 0) continue;
      const index = Number(rest.slice(0, dot));
      if (!Number.isInteger(index)) continue;
      let group = groups.get(index);
      if (!group) groups.set(index, (group = []));
      group.push([rest.slice(dot + 1), value]);
    }
    return [...groups.entries()].sort((a, b) => a[0] - b[0]).map(([, entries]) => new QueryParams(entries));
  }

  filters(): Filter[] {
    return this.structs('Filter').map((f) => ({ name: f.require('Name'), values: f.list('Value') }));
  }

  /** `Tag.N.Key` / `Tag.N.Value`; a missing value reads as '' like EC2 does. */
  tags(prefix = 'Tag'): Tag[] {
    return this.structs(prefix).map((t) => ({ key: t.get('Key') ?? '', value: t.get('Value') ?? '' }));
  }

  /** Tags as given, keeping whether Value was sent at all (DeleteTags treats absence as "any value"). */
  tagPatterns(prefix = 'Tag'): Array<{ key: string; value?: string }> {
    return this.structs(prefix).map((t) => ({ key: t.get('Key') ?? '', value: t.get('Value') }));
  }

  entries(): IterableIterator<[string, string]> {
    return this.map.entries();
  }

  private indexed(prefix: string): number[] {
    const head = `${prefix}.`;
    const indexes: number[] = [];
    for (const key of this.map.keys()) {
      if (!key.startsWith(head)) continue;
      const rest = key.slice(head.length);
      if (/^\d+$/.test(rest)) indexes.push(Number(rest));
    }
    return indexes.sort((a, b) => a - b);
  }
}
