import { useEffect, useState, type ReactNode } from 'react';
import { ApiError, get, patch, post, type FieldError } from '../api/client.ts';
import type { Page, Workstation } from '../api/types.ts';
import { ResourceForm, type FieldSpec, type Values } from '../ui/form.tsx';

/**
 * Static (on-prem) hosts in the console: the add/edit form and the per-machine controls that only
 * offer what the machine's provider can do (`availableActions` from the API). Kept apart from the
 * workstations table, which only places these.
 */

const FIELDS: FieldSpec[] = [
  { key: 'providerId', label: 'Static provider', kind: 'select', createOnly: true },
  { key: 'name', label: 'Name', kind: 'text' },
  { key: 'address', label: 'Address', kind: 'text', help: 'an IP address, or a DNS name (resolved each time a user connects: machines on DHCP)' },
  { key: 'protocols', label: 'Protocols', kind: 'text', help: 'separated by ";", a port after ":" — e.g. rdp;ssh:2222', defaultValue: 'rdp' },
  { key: 'tags', label: 'Tags', kind: 'text', help: 'key=value pairs separated by ";" — pools pick hosts by tag' },
];

/** "rdp;ssh:2222" ↔ [{ protocol: 'rdp' }, { protocol: 'ssh', port: 2222 }], as in the CSV import. */
function protocolsOf(text: string): { protocol: string; port?: number }[] {
  return text
    .split(';')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry) => {
      const [protocol, port] = entry.split(':');
      return port === undefined ? { protocol: protocol!.toLowerCase() } : { protocol: protocol!.toLowerCase(), port: Number(port) };
    });
}
const protocolsText = (p: Workstation['protocols']) => (p ?? []).map((x) => (x.port ? `${x.protocol}:${x.port}` : x.protocol)).join(';');

function tagsOf(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(';')
      .map((s) => s.trim())
      .filter(Boolean)
      .map((t) => [t.split('=')[0]!.trim(), t.includes('=') ? t.slice(t.indexOf('=') + 1).trim() : '']),
  );
}
const tagsText = (t: Record<string, string>) =>
  Object.entries(t)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');

/** Add a host to a static provider, or edit one (name, address, protocols, tags). */
export function StaticHostForm(props: { host: Workstation | null; onDone: () => void; onCancel: () => void }): ReactNode {
  const { host } = props;
  const [providers, setProviders] = useState<{ value: string; label: string }[] | null>(null);
  useEffect(() => {
    get<Page<{ id: string; name: string; kind: string }>>('/api/v1/providers?limit=500').then(
      (p) => setProviders(p.items.filter((x) => x.kind === 'static').map((x) => ({ value: x.id, label: x.name }))),
      () => setProviders([]),
    );
  }, []);
  if (providers === null) return null;
  const specs = FIELDS.map((f) => (f.key === 'providerId' ? { ...f, options: providers } : f));
  const initial: Values = host
    ? { name: host.name, address: host.dnsName ?? host.privateAddress ?? '', protocols: protocolsText(host.protocols), tags: tagsText(host.tags) }
    : { providerId: providers.length === 1 ? providers[0]!.value : '', name: '', address: '', protocols: 'rdp', tags: '' };
  const submit = async (body: Values) => {
    const fields: FieldError[] = [];
    if (!host && !body.providerId) fields.push({ path: 'providerId', message: 'choose the static provider the host belongs to' });
    if (fields.length) throw new ApiError(400, 'invalid_input', 'some fields need attention', fields);
    const payload = { name: body.name, address: body.address, protocols: protocolsOf(String(body.protocols ?? '')), tags: tagsOf(String(body.tags ?? '')) };
    if (host) await patch(`/api/v1/workstations/${host.id}`, payload);
    else await post(`/api/v1/providers/${String(body.providerId)}/hosts`, payload);
    props.onDone();
  };
  return (
    <ResourceForm
      title={host ? `Edit ${host.name}` : 'New static host'}
      specs={specs}
      initial={initial}
      mode={host ? 'edit' : 'create'}
      submitLabel={host ? 'Save host' : 'Add host'}
      onSubmit={submit}
      onCancel={props.onCancel}
    />
  );
}
