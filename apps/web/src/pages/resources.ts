import type { FieldSpec, Values } from '../ui/form.tsx';
import { authServerKindOptions, SAML_CONFIG_HELP, spMetadataColumn } from './auth-server-saml.ts';
import { gatewayEnrollments, gateways } from './gateway-resources.ts';
import { name, str } from './resource-fields.ts';

export type Item = Values & { id: string };

export interface ResourceSpec {
  id: string;
  title: string;
  singular: string;
  /** The collection: GET lists ({ items }), POST creates, `/{id}` edits and deletes. */
  path: string;
  listQuery?: string;
  intro?: string;
  readPermission: string;
  writePermission: string;
  /** A column's text; with `links`, the cell lists those links instead (names that lead to their page). */
  columns: { label: string; value: (item: Item) => string; links?: (item: Item) => { text: string; href: string }[] }[];
  fields: FieldSpec[];
  canCreate: boolean;
  update: 'PATCH' | 'PUT' | null;
  canDelete?: boolean;
  nameOf?: (item: Item) => string;
  /** An item → the values its form starts from (before `valuesOf`). */
  toValues?: (item: Item) => Values;
  /** The notice after a create, from the answer (e.g. a one-time token shown once). */
  created?: (answer: Values) => string;
  /** Form body → request body (e.g. chosen pool ids → policy pool entries). */
  toBody?: (body: Values, item: Item | null) => Values;
  /** Extra per-row operations (POST `path`), each for roles with its permission. */
  rowActions?: RowAction[];
  /** Per-row links to a page about the item (e.g. a user's API tokens), for roles with its permission. */
  rowLinks?: { label: string; permission: string; href: (item: Item) => string }[];
  /** The list is an order the admin sets (policies: first match wins): Move up/down send every id in the new order. */
  reorder?: { method: 'POST' | 'PUT'; path: string };
}

export interface RowAction {
  label: string;
  permission: string;
  path: (item: Item) => string;
  body?: unknown;
  /** The answer, in words, for the notice line. */
  describe: (answer: Values) => string;
}

const yes = (v: unknown) => (v ? 'yes' : 'no');
const description: FieldSpec = { key: 'description', label: 'Description', kind: 'textarea', nullable: true };
const delay = (key: string, label: string): FieldSpec => ({ key, label, kind: 'json', help: '{"action": "none|stop|hibernate|terminate|restart", "delaySeconds": -1 for never}', defaultValue: { action: 'none', delaySeconds: -1 } });

const pools: ResourceSpec = {
  id: 'pools',
  title: 'Pools',
  singular: 'Pool',
  path: '/api/v1/pools',
  listQuery: '?limit=500',
  readPermission: 'pools:read',
  writePermission: 'pools:write',
  canCreate: true,
  update: 'PATCH',
  columns: [
    { label: 'Name', value: (p) => String(p.name) },
    { label: 'Available', value: (p) => String((p.availability as { available: number }).available) },
    { label: 'Total', value: (p) => String((p.availability as { total: number }).total) },
    { label: 'Standby', value: (p) => String(p.minAvailable) },
    { label: 'Max', value: (p) => str(p.maxTotal) },
    { label: 'Provisioning', value: (p) => String(p.provisioning) },
    { label: 'Last reconcile', value: (p) => `${str(p.lastReconcileOutcome)}${p.lastReconcileError ? `: ${String(p.lastReconcileError)}` : ''}` },
  ],
  rowActions: [
    {
      label: 'Reconcile',
      permission: 'pools:write',
      path: (p) => `/api/v1/pools/${p.id}/reconcile`,
      describe: (r) => `Reconcile: ${String(r.outcome)}${r.error ? ` — ${String(r.error)}` : ''}`,
    },
  ],
  fields: [
    name,
    description,
    { key: 'providerId', label: 'Provider', kind: 'select', optionsFrom: '/api/v1/providers?limit=500' },
    { key: 'minAvailable', label: 'Standby (min available)', kind: 'number', defaultValue: 0 },
    { key: 'maxAvailable', label: 'Max available', kind: 'number', nullable: true, help: 'above this, surplus machines the pool launched are terminated; empty = never' },
    { key: 'maxTotal', label: 'Max total', kind: 'number', nullable: true, help: 'empty = no cap' },
    { key: 'launchRatePerMinute', label: 'Launches per minute', kind: 'number', defaultValue: 10 },
    { key: 'provisioning', label: 'Provisioning', kind: 'select', options: [{ value: 'running', label: 'running' }, { value: 'paused', label: 'paused' }], defaultValue: 'running' },
    { key: 'timeZone', label: 'Time zone', kind: 'text', defaultValue: 'UTC' },
    { key: 'gatewayCluster', label: 'Gateway cluster', kind: 'text', nullable: true },
    { key: 'membership', label: 'Membership (JSON)', kind: 'json', help: '{"tags": {"team": ["edit"]}} or {"externalIds": ["i-…"]}', defaultValue: {} },
    { key: 'template', label: 'Launch template (JSON)', kind: 'json', nullable: true, help: '{"imageId": "ami-…", "instanceTypes": ["g5.2xlarge"], "subnetIds": ["subnet-…"], "namePattern": "edit-{seq:03}"}; empty = the pool never launches' },
    { key: 'scheduleWindows', label: 'Schedule windows (JSON)', kind: 'json', defaultValue: [] },
  ],
};

const policies: ResourceSpec = {
  id: 'policies',
  title: 'Policies',
  singular: 'Policy',
  path: '/api/v1/policies',
  intro: 'Evaluated in order; the first enabled policy naming one of the user\'s groups wins.',
  readPermission: 'policies:read',
  writePermission: 'policies:write',
  canCreate: true,
  update: 'PATCH',
  columns: [
    { label: 'Name', value: (p) => String(p.name) },
    { label: 'Order', value: (p) => String(p.position) },
    { label: 'Enabled', value: (p) => yes(p.enabled) },
    { label: 'Mode', value: (p) => String(p.assignmentMode) },
    // Who sees what, read top to bottom: the groups a policy applies to and the pools it offers, by name.
    { label: 'Groups', value: (p) => policyGroups(p).map((g) => g.name).join(', '), links: (p) => policyGroups(p).map((g) => ({ text: g.name, href: `#/groups/${g.id}` })) },
    {
      label: 'Pools',
      value: (p) => policyPools(p).map((x) => x.name).join(', '),
      links: (p) => policyPools(p).map((x) => ({ text: x.desktops > 1 ? `${x.name} (×${x.desktops})` : x.name, href: `#/pools/${x.poolId}/workstations` })),
    },
    { label: 'Launch on login', value: (p) => yes(p.launchOnLogin) },
  ],
  fields: [
    name,
    description,
    { key: 'enabled', label: 'Enabled', kind: 'checkbox', defaultValue: true },
    { key: 'groupIds', label: 'Groups', kind: 'multi', optionsFrom: '/api/v1/groups?limit=500' },
    { key: 'pools', label: 'Pools offered', kind: 'multi', optionsFrom: '/api/v1/pools?limit=500' },
    { key: 'assignmentMode', label: 'Assignment', kind: 'select', options: [{ value: 'floating', label: 'floating (back to the pool on release)' }, { value: 'persistent', label: 'persistent (the user keeps it)' }], defaultValue: 'floating' },
    { key: 'startStoppedOnLogin', label: 'Start stopped machines on login', kind: 'checkbox', defaultValue: true },
    { key: 'launchOnLogin', label: 'Launch a machine on login when none is free', kind: 'checkbox' },
    { key: 'prestartPersistent', label: 'Persistent: start the user\'s machine before their usual arrival', kind: 'checkbox' },
    { key: 'allowRestart', label: 'Users may restart their machine', kind: 'checkbox' },
    { key: 'maxSessionMinutes', label: 'Maximum session length (minutes)', kind: 'number', nullable: true, help: 'the gateway ends a session this long after it was brokered; empty = no cap' },
    { key: 'protocolPlanId', label: 'Protocol plan', kind: 'select', nullable: true, optionsFrom: '/api/v1/protocol-plans' },
    { key: 'powerPlanId', label: 'Power plan', kind: 'select', nullable: true, optionsFrom: '/api/v1/power-plans' },
    { key: 'releasePlanId', label: 'Release plan', kind: 'select', nullable: true, optionsFrom: '/api/v1/release-plans' },
  ],
  reorder: { method: 'POST', path: '/api/v1/policies/reorder' },
  toValues: (p) => ({ ...p, pools: (p.pools as { poolId: string }[]).map((x) => x.poolId) }),
  toBody: (body, item) => {
    const before = (item?.pools as { poolId: string; desktops: number }[] | undefined) ?? [];
    return { ...body, pools: (body.pools as string[]).map((poolId) => ({ poolId, desktops: before.find((b) => b.poolId === poolId)?.desktops ?? 1 })) };
  },
};

/** A policy's groups and pools by name (older brokers sent ids only: the id stands in). */
function policyGroups(p: Item): { id: string; name: string }[] {
  return (p.groups as { id: string; name: string }[] | undefined) ?? (p.groupIds as string[]).map((id) => ({ id, name: id }));
}
function policyPools(p: Item): { poolId: string; name: string; desktops: number }[] {
  return (p.pools as { poolId: string; name?: string; desktops: number }[]).map((x) => ({ ...x, name: x.name ?? x.poolId }));
}

const plan = (id: string, title: string, singular: string, fields: FieldSpec[], columns: ResourceSpec['columns']): ResourceSpec => ({
  id,
  title,
  singular,
  path: `/api/v1/${id}`,
  readPermission: 'policies:read',
  writePermission: 'policies:write',
  canCreate: true,
  update: 'PUT',
  columns: [{ label: 'Name', value: (p) => String(p.name) }, ...columns],
  fields: [name, description, ...fields],
});

const protocolPlans = plan(
  'protocol-plans',
  'Protocol plans',
  'Protocol plan',
  [{ key: 'protocols', label: 'Protocols (JSON)', kind: 'json', help: 'in order of preference: [{"protocol": "rdp", "port": 3389, "viaGateway": true, "gatewayMode": "routed", "reconnectWindowSeconds": 600, "clientOptions": {"fileLines": ["use multimon:i:1"]}}] — gatewayMode: portForward (default) or routed (needs viaGateway); "browser": true (routed vnc, ssh, rdp) offers Open in browser, "clientOptions": {"viewOnly": true} makes a VNC tab view-only', defaultValue: [{ protocol: 'rdp', viaGateway: false }] }],
  [{ label: 'Protocols', value: (p) => (p.protocols as { protocol: string; viaGateway: boolean; gatewayMode?: string; reconnectWindowSeconds?: number; browser?: boolean }[]).map((x) => `${x.protocol}${x.viaGateway ? (x.gatewayMode === 'routed' ? ` via gateway (routed${x.reconnectWindowSeconds === 0 ? ', single use' : `, reconnect ${x.reconnectWindowSeconds ?? 600} s`}${x.browser ? ', in browser' : ''})` : ' via gateway') : ''}`).join(', ') }],
);
const powerPlans = plan(
  'power-plans',
  'Power plans',
  'Power plan',
  [delay('onDisconnect', 'On disconnect (JSON)'), delay('onLogout', 'On logout (JSON)'), delay('onIdle', 'On idle (JSON)'), { key: 'scheduleRules', label: 'Schedule rules (JSON)', kind: 'json', defaultValue: [], help: '[{"days": ["mon"], "at": "20:00", "action": "stop", "target": "no-session"}]' }, { key: 'timeZone', label: 'Time zone', kind: 'text', defaultValue: 'UTC' }],
  [
    { label: 'Disconnect', value: (p) => `${(p.onDisconnect as { action: string }).action}` },
    { label: 'Logout', value: (p) => `${(p.onLogout as { action: string }).action}` },
    { label: 'Idle', value: (p) => `${(p.onIdle as { action: string }).action}` },
  ],
);
const releasePlans = plan(
  'release-plans',
  'Release plans',
  'Release plan',
  [
    { key: 'releaseOnLogout', label: 'Release on logout', kind: 'checkbox' },
    { key: 'releaseAfterDisconnectSeconds', label: 'Release after disconnect (seconds, -1 never)', kind: 'number', defaultValue: -1 },
    { key: 'releaseOnIdleSeconds', label: 'Release after idle (seconds, -1 never)', kind: 'number', defaultValue: -1 },
    { key: 'forceLogout', label: 'Force logout', kind: 'checkbox' },
    { key: 'warnSeconds', label: 'Warn this many seconds before', kind: 'number', defaultValue: 0 },
    { key: 'warnMessage', label: 'Warning message', kind: 'text', nullable: true },
  ],
  [
    { label: 'On logout', value: (p) => yes(p.releaseOnLogout) },
    { label: 'After disconnect (s)', value: (p) => String(p.releaseAfterDisconnectSeconds) },
  ],
);

const providers: ResourceSpec = {
  id: 'providers',
  title: 'Providers',
  singular: 'Provider',
  path: '/api/v1/providers',
  listQuery: '?limit=500',
  readPermission: 'providers:read',
  writePermission: 'providers:write',
  canCreate: true,
  update: 'PATCH',
  columns: [
    { label: 'Name', value: (p) => String(p.name) },
    { label: 'Kind', value: (p) => String(p.kind) },
    { label: 'Region', value: (p) => str(p.region) },
    { label: 'Credentials', value: (p) => { const c = p.credentials as { mode: string; hasSecret: boolean }; return `${c.mode}${c.hasSecret ? ' (secret stored)' : ''}`; } },
    { label: 'Enabled', value: (p) => yes(p.enabled) },
    { label: 'Last sync', value: (p) => { const s = p.lastSync as { status: string; message: string | null } | null; return s ? `${s.status}${s.message ? `: ${s.message}` : ''}` : '—'; } },
  ],
  rowActions: [
    { label: 'Test', permission: 'providers:write', path: (p) => `/api/v1/providers/${p.id}/test`, describe: (r) => `Test: ${String(r.message)}` },
    { label: 'Sync', permission: 'workstations:write', path: (p) => `/api/v1/providers/${p.id}/sync`, describe: (r) => `Sync: ${String(r.status)}${r.message ? ` — ${String(r.message)}` : ''}` },
  ],
  fields: [
    { key: 'kind', label: 'Kind', kind: 'select', createOnly: true, options: [{ value: 'aws-ec2', label: 'AWS EC2' }, { value: 'static', label: 'static hosts' }] },
    name,
    { key: 'region', label: 'Region (EC2)', kind: 'text' },
    { key: 'endpoint', label: 'Endpoint override (EC2)', kind: 'text' },
    { key: 'credentials', label: 'Credentials (JSON, EC2)', kind: 'json', writeOnly: true, help: '{"mode": "default-chain"} or {"mode": "access-key", "accessKeyId": "…", "secretAccessKey": "…"}; never shown again — leave empty to keep' },
    { key: 'tagFilter', label: 'Tag filter (JSON, EC2)', kind: 'json' },
    { key: 'syncIntervalSeconds', label: 'Sync every (seconds)', kind: 'number' },
    { key: 'enabled', label: 'Enabled', kind: 'checkbox', defaultValue: true },
  ],
};

/** What an admin should know about an auth server's transport: passwords in clear text, or RADIUS answers that could be forged. */
function authServerWarning(a: Item): string {
  const config = (a.config ?? {}) as { urls?: string[]; startTls?: boolean; requireMessageAuthenticator?: boolean };
  if (a.kind === 'ldap' && !config.startTls && (config.urls ?? []).some((u) => /^ldap:/i.test(u))) return 'Insecure: plain ldap:// sends passwords unencrypted';
  if (a.kind === 'radius' && config.requireMessageAuthenticator === false) return 'Message-Authenticator not required: answers could be forged (BlastRADIUS)';
  return '';
}

const authServers: ResourceSpec = {
  id: 'auth-servers',
  title: 'Auth servers',
  singular: 'Auth server',
  path: '/api/v1/auth-servers',
  readPermission: 'auth-servers:read',
  writePermission: 'auth-servers:write',
  canCreate: true,
  update: 'PATCH',
  columns: [
    { label: 'Name', value: (a) => String(a.name) },
    { label: 'Kind', value: (a) => String(a.kind) },
    { label: 'Purpose', value: (a) => String(a.purpose) },
    { label: 'Order', value: (a) => String(a.position) },
    { label: 'Enabled', value: (a) => yes(a.enabled) },
    { label: 'Secret', value: (a) => (a.secretSet ? 'stored' : 'none') },
    { label: 'Warning', value: authServerWarning },
    spMetadataColumn,
  ],
  rowActions: [{ label: 'Test', permission: 'auth-servers:write', path: (a) => `/api/v1/auth-servers/${a.id}/test`, body: {}, describe: (r) => `Test: ${r.ok ? 'ok' : 'failed'} — ${String(r.message)}` }],
  fields: [
    { key: 'kind', label: 'Kind', kind: 'select', createOnly: true, options: authServerKindOptions },
    name,
    { key: 'purpose', label: 'Purpose (RADIUS)', kind: 'select', options: [{ value: 'primary', label: 'primary' }, { value: 'second-factor', label: 'second factor' }] },
    { key: 'enabled', label: 'Enabled', kind: 'checkbox', defaultValue: true },
    {
      key: 'config',
      label: 'Settings (JSON)',
      kind: 'json',
      help: 'see docs/sign-in.md for each kind. LDAP: ldap:// needs "startTls": true, or "allowInsecure": true to send passwords unencrypted. RADIUS: "requireMessageAuthenticator" (BlastRADIUS) is on for new servers. OIDC: {"issuer": "https://…", "clientId": "…", "scopes": ["openid", "profile", "email", "groups"], "amrValues": ["mfa"], "label": "Sign in with Okta"}; register <STAGEDOOR_PUBLIC_URL>/api/v1/auth/oidc/<name>/callback at the IdP.' + SAML_CONFIG_HELP,
    },
    { key: 'groupMappings', label: 'Group mappings (JSON, LDAP, OIDC, SAML)', kind: 'json', help: '[{"externalGroup": "cn=artists,ou=groups,dc=example" or the IdP group name/id, "groupId": "<Stagedoor group id>"}]; memberships follow the server at each sign-in' },
    { key: 'clientSecret', label: 'OIDC client secret', kind: 'password', writeOnly: true, help: 'write-only: never shown; leave empty to keep. Type it again when you change the issuer or client id' },
    { key: 'bindPassword', label: 'LDAP bind password', kind: 'password', writeOnly: true, help: 'write-only: never shown; leave empty to keep. Type it again when you change the URLs, bind DN or TLS settings' },
    { key: 'sharedSecret', label: 'RADIUS shared secret', kind: 'password', writeOnly: true, help: 'write-only: never shown; leave empty to keep. Type it again when you change a server host or port' },
    { key: 'requiredForGroupIds', label: 'Required for groups (second factor)', kind: 'multi', omitEmpty: true, optionsFrom: '/api/v1/groups?limit=500' },
  ],
  reorder: { method: 'PUT', path: '/api/v1/auth-servers/order' },
  // Mappings go back without their groupName (the API takes ids only); none: the field stays empty and is not sent.
  toValues: (a) => ({ ...a, requiredForGroupIds: (a.requiredForGroups as { id: string }[]).map((g) => g.id), groupMappings: (a.groupMappings as unknown[]).length ? (a.groupMappings as { externalGroup: string; groupId: string }[]).map(({ externalGroup, groupId }) => ({ externalGroup, groupId })) : undefined }),
};

const users: ResourceSpec = {
  id: 'users',
  title: 'Users',
  singular: 'User',
  path: '/api/v1/users',
  listQuery: '?limit=500',
  readPermission: 'users:read',
  writePermission: 'users:write',
  canCreate: true,
  update: 'PATCH',
  nameOf: (u) => String(u.username),
  columns: [
    { label: 'Username', value: (u) => String(u.username) },
    { label: 'Name', value: (u) => str(u.displayName) },
    { label: 'Role', value: (u) => String(u.role) },
    { label: 'Groups', value: (u) => (u.groups as { name: string }[]).map((g) => g.name).join(', ') },
    { label: 'Disabled', value: (u) => yes(u.disabled) },
  ],
  rowLinks: [
    { label: 'API tokens', permission: 'users:read', href: (u) => `#/users/${u.id}/tokens` },
    { label: 'Set password of', permission: 'users:write', href: (u) => `#/users/${u.id}/password` },
  ],
  rowActions: [{ label: 'Sign out everywhere', permission: 'users:write', path: (u) => `/api/v1/users/${u.id}/logout-all`, describe: (r) => `Every session of the user has ended (${String(r.sessionsEnded)}); ${String(r.apiTokensRevoked)} API token(s) revoked.` }],
  fields: [
    { key: 'username', label: 'Username', kind: 'text', createOnly: true },
    { key: 'password', label: 'Password', kind: 'password', createOnly: true, writeOnly: true, help: 'leave empty for directory users' },
    { key: 'displayName', label: 'Display name', kind: 'text', nullable: true },
    { key: 'email', label: 'E-mail', kind: 'text', nullable: true },
    { key: 'role', label: 'Role', kind: 'select', options: ['user', 'auditor', 'operator', 'admin'].map((r) => ({ value: r, label: r })), defaultValue: 'user' },
    { key: 'disabled', label: 'Disabled', kind: 'checkbox' },
    { key: 'groupIds', label: 'Groups', kind: 'multi', optionsFrom: '/api/v1/groups?limit=500' },
  ],
  toValues: (u) => ({ ...u, groupIds: (u.groups as { id: string }[]).map((g) => g.id) }),
  toBody: (body, item) => (item ? body : Object.fromEntries(Object.entries(body).filter(([, v]) => v !== null))),
};

const groups: ResourceSpec = {
  id: 'groups',
  title: 'Groups',
  singular: 'Group',
  path: '/api/v1/groups',
  listQuery: '?limit=500',
  readPermission: 'groups:read',
  writePermission: 'groups:write',
  canCreate: true,
  update: 'PATCH',
  columns: [
    { label: 'Name', value: (g) => String(g.name) },
    { label: 'Source', value: (g) => String(g.source) },
    { label: 'Members', value: (g) => String(g.memberCount) },
    { label: 'Description', value: (g) => str(g.description) },
  ],
  rowLinks: [{ label: 'Members of', permission: 'groups:read', href: (g) => `#/groups/${g.id}` }],
  fields: [name, { key: 'description', label: 'Description', kind: 'textarea' }],
};

export const RESOURCES: ResourceSpec[] = [pools, policies, protocolPlans, powerPlans, releasePlans, providers, authServers, gateways, gatewayEnrollments, users, groups];
