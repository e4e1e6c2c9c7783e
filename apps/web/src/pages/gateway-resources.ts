import { routedPortsText } from './gateway-ports.ts';
import { name, str } from './resource-fields.ts';
import type { ResourceSpec } from './resources.ts';

/** The console's gateway pages: the enrolled gateways, and the one-time tokens that enrol them (ADR 0016). */
export const gateways: ResourceSpec = {
  id: 'gateways',
  title: 'Gateways',
  singular: 'Gateway',
  path: '/api/v1/gateways',
  listQuery: '?limit=500',
  intro:
    'Gateways enrol with a one-time token (stagedoor gateway --enroll; docs/gateway.md) and get the address clients dial from its record. Disable or drain one here; Re-enrol makes a token bound to that gateway (its credential rotates when it is used; to move its address, POST /api/v1/gateways/{id}/reenrollments with publicAddress).',
  readPermission: 'gateways:read',
  writePermission: 'gateways:write',
  canCreate: false,
  update: 'PATCH',
  columns: [
    { label: 'Name', value: (g) => String(g.name) },
    { label: 'Cluster', value: (g) => String(g.cluster) },
    { label: 'Address', value: (g) => `${String(g.publicAddress)}:${String(g.portRangeStart)}-${String(g.portRangeEnd)}` },
    { label: 'Address changed', value: (g) => (g.previousPublicAddress ? `from ${String(g.previousPublicAddress)} on ${new Date(String(g.publicAddressChangedAt)).toLocaleString()}` : '—') },
    { label: 'Status', value: (g) => String(g.status) },
    { label: 'Health', value: (g) => String(g.health) },
    { label: 'Live grants', value: (g) => String(g.liveGrants) },
    { label: 'Routed ports', value: routedPortsText },
  ],
  rowActions: [
    {
      label: 'Re-enrol',
      permission: 'gateways:write',
      path: (g) => `/api/v1/gateways/${g.id}/reenrollments`,
      body: {},
      describe: (r) => `Re-enrolment token for ${String(r.name)} at ${String(r.publicAddress)} (shown only now): ${String(r.token)} — run on that gateway: stagedoor gateway --enroll ${String(r.token)}`,
    },
  ],
  fields: [name, { key: 'status', label: 'Status', kind: 'select', options: ['active', 'disabled', 'draining'].map((s) => ({ value: s, label: s })) }],
};

export const gatewayEnrollments: ResourceSpec = {
  id: 'gateway-enrollments',
  title: 'Gateway enrolment',
  singular: 'Enrolment token',
  path: '/api/v1/gateways/enrollments',
  listQuery: '?limit=500',
  intro: 'A one-time token lets a new gateway join a cluster: stagedoor gateway --enroll <token> (docs/gateway.md). The token is shown once, here. An existing gateway is re-enrolled from the Gateways page.',
  readPermission: 'gateways:read',
  writePermission: 'gateways:write',
  canCreate: true,
  update: null,
  columns: [
    { label: 'Cluster', value: (e) => String(e.cluster) },
    { label: 'Gateway name', value: (e) => str(e.name) },
    { label: 'Purpose', value: (e) => (e.purpose === 'reenroll' ? 're-enrol' : 'new gateway') },
    { label: 'Public address', value: (e) => str(e.publicAddress) },
    { label: 'Expires', value: (e) => new Date(String(e.expiresAt)).toLocaleString() },
    { label: 'Used', value: (e) => (e.usedAt ? new Date(String(e.usedAt)).toLocaleString() : 'not yet') },
  ],
  fields: [
    { key: 'cluster', label: 'Cluster', kind: 'text', defaultValue: 'default' },
    { key: 'name', label: 'Gateway name (optional)', kind: 'text', help: 'must be free: an existing gateway is re-enrolled from the Gateways page' },
    { key: 'publicAddress', label: 'Public address', kind: 'text', help: 'host name or IP address clients will dial: the gateway gets it from this token' },
    { key: 'expiresInMinutes', label: 'Valid for (minutes)', kind: 'number', defaultValue: 60 },
  ],
  created: (answer) => `Enrolment token (shown only now): ${String(answer.token)} — run: stagedoor gateway --enroll ${String(answer.token)}`,
};
