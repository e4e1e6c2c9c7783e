// EC2's tag rules: keys up to 128 characters and not starting with `aws:` (reserved for
// AWS itself), values up to 256, at most 50 tags per resource.

import { Ec2Error, invalidParameterValue } from './errors.ts';
import type { Tag } from './types.ts';

export const MAX_TAGS_PER_RESOURCE = 50;

export function validateTags(tags: readonly Tag[]): void {
  for (const tag of tags) {
    if (tag.key === '') throw invalidParameterValue('Tag key cannot be empty');
    if (tag.key.length > 128) {
      throw invalidParameterValue(`Tag key exceeds the maximum length of 128 characters: ${tag.key.slice(0, 32)}…`);
    }
    if (tag.value.length > 256) {
      throw invalidParameterValue(`Tag value exceeds the maximum length of 256 characters for key ${tag.key}`);
    }
    if (tag.key.toLowerCase().startsWith('aws:')) {
      throw invalidParameterValue("Tag keys starting with 'aws:' are reserved for internal use");
    }
  }
}

/** `tags` with `updates` applied (same key replaces its value), or TagLimitExceeded. */
export function mergeTags(tags: readonly Tag[], updates: readonly Tag[]): Tag[] {
  const merged = new Map(tags.map((t) => [t.key, t.value]));
  for (const update of updates) merged.set(update.key, update.value);
  if (merged.size > MAX_TAGS_PER_RESOURCE) {
    throw new Ec2Error('TagLimitExceeded', 'The maximum number of tags for a resource has been reached.');
  }
  return [...merged].map(([key, value]) => ({ key, value }));
}

/** Removes tags matching `patterns`; a pattern without a value removes the key whatever its value. */
export function removeTags(tags: readonly Tag[], patterns: ReadonlyArray<{ key: string; value?: string }>): Tag[] {
  if (patterns.length === 0) return tags.filter((t) => t.key.startsWith('aws:'));
  return tags.filter(
    (t) => !patterns.some((p) => p.key === t.key && (p.value === undefined || p.value === t.value)),
  );
}
