import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { del, get, messageOf, query } from '../api/client.ts';
import { useCan } from '../api/session.ts';
import type { LiveSession, Page } from '../api/types.ts';
import { ConfirmButton, ErrorNote, Pager, when } from '../ui/confirm.tsx';

const LIMIT = 25;

/** Who is connected to what; disconnect, or force-release a persistent assignment too. */
export function SessionsPage(): ReactNode {
  const [page, setPage] = useState<Page<LiveSession> | null>(null);
  const [offset, setOffset] = useState(0);
  const [error, setError] = useState<string | null>(null);
  const canWrite = useCan('connections:write');
  const load = useCallback(() => {
    get<Page<LiveSession>>(`/api/v1/connections${query({ limit: LIMIT, offset })}`).then(setPage, (e) => setError(messageOf(e)));
  }, [offset]);
  useEffect(load, [load]);
  return (
    <section aria-labelledby="sessions-title">
      <h1 id="sessions-title">Live sessions</h1>
      <ErrorNote error={error} />
      <button type="button" className="secondary" onClick={load}>
        Refresh
      </button>
      <table aria-label="Live sessions">
        <thead>
          <tr>
            <th scope="col">User</th>
            <th scope="col">Desktop</th>
            <th scope="col">Pool</th>
            <th scope="col">Protocol</th>
            <th scope="col">State</th>
            <th scope="col">From</th>
            <th scope="col">Since</th>
            {canWrite && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {page?.items.map((s) => (
            <tr key={s.id}>
              <th scope="row">{s.username}</th>
              <td>{s.workstationName ?? '—'}</td>
              <td>{s.poolName ?? '—'}</td>
              <td>{s.protocol}</td>
              <td>{s.state}</td>
              <td>{s.clientAddress ?? '—'}</td>
              <td>{when(s.requestedAt)}</td>
              {canWrite && (
                <td className="actions">
                  <ConfirmButton label={`Disconnect ${s.username}`} question={`Disconnect ${s.username} from ${s.workstationName}?`} confirmLabel="Disconnect" onConfirm={() => del(`/api/v1/connections/${s.id}`)} onDone={load} />
                  <ConfirmButton
                    label={`Force-release ${s.username}`}
                    question={`Disconnect and release ${s.workstationName} from ${s.username}, even if it is theirs to keep?`}
                    confirmLabel="Force release"
                    danger
                    onConfirm={() => del(`/api/v1/connections/${s.id}?release=true`)}
                    onDone={load}
                  />
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {page?.items.length === 0 && <p className="muted">Nobody is connected.</p>}
      {page && <Pager label="Live sessions" total={page.total} limit={LIMIT} offset={offset} onOffset={setOffset} />}
    </section>
  );
}
