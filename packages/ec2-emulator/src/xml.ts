// Small string builders for EC2's XML. Element content passed to `el` is already XML;
// values passed to `text` are escaped, so user data (tags, names) can never break a response.

export const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

const SPECIAL = /[&<>"']/;

export function escapeXml(value: string): string {
  // Most values (ids, states, addresses) need no escaping; skip the replace for them.
  if (!SPECIAL.test(value)) return value;
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

export function el(name: string, ...children: string[]): string {
  return `<${name}>${children.join('')}</${name}>`;
}

/** A leaf element; omitted entirely when the value is undefined, as EC2 omits unset fields. */
export function text(name: string, value: string | number | boolean | undefined): string {
  if (value === undefined) return '';
  return `<${name}>${escapeXml(String(value))}</${name}>`;
}

/** An EC2 list: `<name><item>…</item>…</name>`. */
export function items<T>(name: string, values: readonly T[], render: (value: T) => string): string {
  let out = `<${name}>`;
  for (const value of values) out += `<item>${render(value)}</item>`;
  return `${out}</${name}>`;
}

export function tagSet(tags: readonly { key: string; value: string }[]): string {
  // EC2 leaves tagSet out for untagged resources.
  if (tags.length === 0) return '';
  return items('tagSet', tags, (t) => text('key', t.key) + text('value', t.value));
}

export function responseDocument(action: string, requestId: string, body: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<${action}Response xmlns="${EC2_NAMESPACE}">${text('requestId', requestId)}${body}</${action}Response>`
  );
}

/** EC2's error shape: note `RequestID`, unlike the `requestId` of successful responses. */
export function errorDocument(code: string, message: string, requestId: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<Response><Errors><Error>${text('Code', code)}${text('Message', message)}</Error></Errors>` +
    `${text('RequestID', requestId)}</Response>`
  );
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
