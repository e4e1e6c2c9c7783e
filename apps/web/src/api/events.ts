import { useEffect, useState } from 'react';
import type { Connection, DashboardEvent } from './types.ts';

export interface LiveState {
  connections: Connection[] | null;
  dashboard: DashboardEvent | null;
  /** false while the stream is (re)connecting. */
  live: boolean;
}

/**
 * The broker's server-sent events (GET /api/v1/events): each event is the whole current value of
 * its topic. EventSource reconnects on its own; the stream ends when the session does.
 */
export function useLiveEvents(enabled: boolean): LiveState {
  const [state, setState] = useState<LiveState>({ connections: null, dashboard: null, live: false });
  useEffect(() => {
    if (!enabled || typeof EventSource === 'undefined') return;
    const source = new EventSource('/api/v1/events');
    source.onopen = () => setState((s) => ({ ...s, live: true }));
    source.onerror = () => setState((s) => ({ ...s, live: false }));
    source.addEventListener('connections', (e) => setState((s) => ({ ...s, connections: (JSON.parse((e as MessageEvent<string>).data) as { items: Connection[] }).items })));
    source.addEventListener('dashboard', (e) => setState((s) => ({ ...s, dashboard: JSON.parse((e as MessageEvent<string>).data) as DashboardEvent })));
    source.addEventListener('end', () => source.close());
    return () => source.close();
  }, [enabled]);
  return state;
}
