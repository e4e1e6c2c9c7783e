// EC2 filters: values of one filter are OR-ed, filters are AND-ed, `*` and `?` are
// wildcards. Each resource type declares the filter names it understands; an unknown
// name is refused the way EC2 refuses it.

import { invalidParameterValue } from './errors.ts';
import type { Filter } from './query.ts';
import type { Tag } from './types.ts';

type FieldValue = string | readonly string[] | undefined;
export type FieldMap<T> = Record<string, (resource: T) => FieldValue>;
export type Predicate<T> = (resource: T) => boolean;

function valueMatcher(pattern: string): (value: string) => boolean {
  if (!/[*?]/.test(pattern)) return (value) => value === pattern;
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  const regex = new RegExp(`^${source}$`, 's');
  return (value) => regex.test(value);
}

function anyMatcher(patterns: readonly string[]): (value: string) => boolean {
  const matchers = patterns.map(valueMatcher);
  return (value) => matchers.some((m) => m(value));
}

function matchesField(value: FieldValue, match: (value: string) => boolean): boolean {
  if (value === undefined) return false;
  if (typeof value === 'string') return match(value);
  return value.some(match);
}

export function compileFilters<T>(filters: readonly Filter[], fields: FieldMap<T>, tagsOf: (r: T) => readonly Tag[]): Predicate<T> {
  const predicates: Predicate<T>[] = filters.map((filter) => {
    const match = anyMatcher(filter.values);
    if (filter.name.startsWith('tag:')) {
      const matchKey = valueMatcher(filter.name.slice(4));
      return (r) => tagsOf(r).some((t) => matchKey(t.key) && match(t.value));
    }
    if (filter.name === 'tag-key') return (r) => tagsOf(r).some((t) => match(t.key));
    if (filter.name === 'tag-value') return (r) => tagsOf(r).some((t) => match(t.value));
    const field = fields[filter.name];
    if (!field) throw invalidParameterValue(`The filter '${filter.name}' is invalid`);
    return (r) => matchesField(field(r), match);
  });
  if (predicates.length === 0) return () => true;
  return (r) => predicates.every((p) => p(r));
}
