import { createContext, useContext } from 'react';
import type { User } from './types.ts';

export interface SessionInfo {
  user: User;
  permissions: string[];
}

export const SessionContext = createContext<SessionInfo | null>(null);

export function useSession(): SessionInfo {
  const s = useContext(SessionContext);
  if (!s) throw new Error('useSession outside a signed-in view');
  return s;
}

/** Whether the signed-in role may do this (from GET /me; the API enforces it regardless). */
export function useCan(permission: string): boolean {
  return useSession().permissions.includes(permission);
}

export const isStaff = (s: SessionInfo) => s.user.role !== 'user';
