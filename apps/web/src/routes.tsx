import { useEffect, useState, type ReactNode } from 'react';
import type { LiveState } from './api/events.ts';
import { AuditPage } from './pages/audit.tsx';
import { DashboardPage } from './pages/dashboard.tsx';
import { PortalPage } from './pages/portal.tsx';
import { ResourcePage } from './pages/resource.tsx';
import { RESOURCES } from './pages/resources.ts';
import { SessionsPage } from './pages/sessions.tsx';
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
  { path: '/audit', title: 'Audit log', permission: 'audit:read', render: () => <AuditPage /> },
];

export function routeFor(path: string, allowed: Route[]): Route | undefined {
  return allowed.find((r) => r.path === path);
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
