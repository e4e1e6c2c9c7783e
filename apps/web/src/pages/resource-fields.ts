import type { FieldSpec } from '../ui/form.tsx';

/** What the console's resource pages share (resources.ts, gateway-resources.ts): a cell for a value that may be missing, the name field. */
export const str = (v: unknown) => (v === null || v === undefined || v === '' ? '—' : String(v));
export const name: FieldSpec = { key: 'name', label: 'Name', kind: 'text' };
