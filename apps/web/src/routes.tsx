import { useEffect, useState, type ReactNode } from 'react';
import type { LiveState } from './api/events.ts';
import { AuditPage } from './pages/audit.tsx';
import { DashboardPage } from './pages/dashboard.tsx';
import { GroupPage } from './pages/group.tsx';
import { PoolForecastPage } from './pages/pool-forecast.tsx';
import { PortalPage } from './pages/portal.tsx';
import { ResourcePage } from './pages/resource.tsx';
import { RESOURCES } from './pages/resources.ts';
import { SessionsPage } from './pages/sessions.tsx';
import { UserPasswordPage } from './pages/user-password.tsx';
import { UserTokensPage } from './pages/user-tokens.tsx';
import { WorkstationsPage } from './pages/workstations.tsx';

export interface Route {
  path: string;
  title: string;
  /** Shown only to roles with this permission (GET /me); the API checks it again. */
  permission?: string;
  render: (live: LiveState) => ReactNode;
}

export const ROUTES: Route[] = [
  { path: '/', title: 'My desktops', render: (live) => <PortalPage live={live} /> },
  { path: '/dashboard', title: 'Dashboard', permission: 'pools:read', render: (live) => <DashboardPage live={live} /> },
  { path: '/workstations', title: 'Workstations', permission: 'workstations:read', render: () => <WorkstationsPage /> },
  { path: '/sessions', title: 'Live sessions', permission: 'connections:read', render: () => <SessionsPage /> },
  ...RESOURCES.map((spec) => ({ path: `/${spec.id}`, title: spec.title, permission: spec.readPermission, render: () => <ResourcePage key={spec.id} spec={spec} /> })),
  { path: '/forecast', title: 'Pool forecast', permission: 'pools:read', render: () => <PoolForecastPage /> },
  { path: '/audit', title: 'Audit log', permission: 'audit:read', render: () => <AuditPage /> },
];

/** Pages under one item of a resource, reached from its row (not in the navigation). */
const ITEM_PAGES: { pattern: RegExp; title: string; permission: string; render: (id: string) => ReactNode }[] = [
  { pattern: /^\/users\/([0-9a-f-]{36})\/tokens$/, title: 'API tokens', permission: 'users:read', render: (id) => <UserTokensPage key={id} userId={id} /> },
  { pattern: /^\/users\/([0-9a-f-]{36})\/password$/, title: 'Set password', permission: 'users:write', render: (id) => <UserPasswordPage key={id} userId={id} /> },
  { pattern: /^\/groups\/([0-9a-f-]{36})$/, title: 'Group members', permission: 'groups:read', render: (id) => <GroupPage key={id} groupId={id} /> },
  { pattern: /^\/pools\/([0-9a-f-]{36})\/workstations$/, title: 'Workstations', permission: 'workstations:read', render: (id) => <WorkstationsPage key={id} poolId={id} /> },
];
// One Route object per path, so that the shell sees the same page (and keeps focus) across renders.
const itemRoutes = new Map<string, Route>();

/** The page at `path` among the allowed ones; item pages need their own permission (`permissions`, from GET /me). */
export function routeFor(path: string, allowed: Route[], permissions: string[] = []): Route | undefined {
  const exact = allowed.find((r) => r.path === path);
  if (exact) return exact;
  for (const page of ITEM_PAGES) {
    const id = page.pattern.exec(path)?.[1];
    if (!id || !(permissions.includes(page.permission) || allowed.some((r) => r.permission === page.permission))) continue;
    if (!itemRoutes.has(path)) itemRoutes.set(path, { path, title: page.title, permission: page.permission, render: () => page.render(id) });
    return itemRoutes.get(path);
  }
  return undefined;
}

/** `#/pools` → `/pools`; hash routing needs no server support and keeps every URL a static file. */
export function useHashRoute(): string {
  const read = () => window.location.hash.replace(/^#/, '') || '/';
  const [path, setPath] = useState(read);
  useEffect(() => {
    const on = () => setPath(read());
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return path;
}
