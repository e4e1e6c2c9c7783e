/** JSON with object keys sorted and undefined members dropped: equal values give equal strings. */
export function stableJson(v: unknown): string {
  if (v === undefined) return 'null';
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val) ? Object.fromEntries(Object.entries(val as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => a.localeCompare(b))) : val,
  );
}
