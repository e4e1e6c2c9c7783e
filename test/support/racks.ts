import { as, type Session } from './session.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the same loose shape as app.inject's json()
type Inject = (opts: { method: 'GET' | 'POST' | 'PATCH' | 'DELETE'; url: string; headers?: Record<string, string>; payload?: unknown }) => Promise<{ statusCode: number; json(): any; body: string }>;

/**
 * A studio of `hosts` always-on static workstations in one pool, offered to `groupName` by a
 * floating policy with launch-on-login (which the static pool cannot do: it has no template, so
 * once every host is taken the answer is "no desktop available").
 */
export async function seedRackPool(inject: Inject, admin: Session, opts: { hosts: number; groupName: string; name?: string }) {
  const name = opts.name ?? 'racks';
  const call = async (method: 'POST' | 'GET', url: string, payload?: unknown) => {
    const res = await inject({ method, url, headers: as(admin), payload });
    if (res.statusCode >= 300) throw new Error(`${method} ${url} → ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const provider = await call('POST', '/api/v1/providers', { kind: 'static', name: `${name}-provider` });
  const csv = ['name,address,protocols,tags', ...Array.from({ length: opts.hosts }, (_, i) => `${name}-${String(i).padStart(4, '0')},10.${50 + Math.floor(i / 250)}.${Math.floor(i / 250) % 250}.${(i % 250) + 1},rdp;ssh,rack=${name}`)].join('\n');
  await call('POST', `/api/v1/providers/${provider.id}/hosts/import`, { csv });
  const pool = await call('POST', '/api/v1/pools', { name, providerId: provider.id, membership: { tags: { rack: [name] } }, maxTotal: opts.hosts });
  await call('POST', `/api/v1/pools/${pool.id}/reconcile`);
  const groups = await call('GET', '/api/v1/groups?limit=500');
  const group = groups.items.find((g: { name: string }) => g.name === opts.groupName) ?? (await call('POST', '/api/v1/groups', { name: opts.groupName }));
  const policy = await call('POST', '/api/v1/policies', { name: `${name}-policy`, groupIds: [group.id], pools: [{ poolId: pool.id, desktops: 1 }], assignmentMode: 'floating', launchOnLogin: true });
  return { provider, pool, group, policy };
}
