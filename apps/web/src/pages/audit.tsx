import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { get, messageOf, query } from '../api/client.ts';
import type { AuditEvent, Page } from '../api/types.ts';
import { ErrorNote, Pager, when } from '../ui/confirm.tsx';

const LIMIT = 50;

/** The audit trail, newest first, with the API's filters. */
export function AuditPage(): ReactNode {
  const [filters, setFilters] = useState({ action: '', actor: '', outcome: '', from: '', to: '' });
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page<AuditEvent> | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Typing fires a request per key; only the latest answer may land.
  const latest = useRef(0);
  const load = useCallback(() => {
    const mine = ++latest.current;
    const iso = (v: string) => (v ? new Date(v).toISOString() : undefined);
    get<Page<AuditEvent>>(`/api/v1/audit${query({ ...filters, from: iso(filters.from), to: iso(filters.to), limit: LIMIT, offset })}`).then(
      (p) => {
        if (mine !== latest.current) return;
        setPage(p);
        setError(null);
      },
      (e) => mine === latest.current && setError(messageOf(e)),
    );
  }, [filters, offset]);
  useEffect(load, [load]);
  const set = (key: keyof typeof filters) => (e: { target: { value: string } }) => {
    setFilters((f) => ({ ...f, [key]: e.target.value }));
    setOffset(0);
  };
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">Audit log</h1>
      <form className="filters" role="search" aria-label="Filter the audit log" onSubmit={(e) => e.preventDefault()}>
        <label htmlFor="audit-action">Action</label>
        <input id="audit-action" value={filters.action} placeholder="e.g. pool.* or connection.denied" onChange={set('action')} />
        <label htmlFor="audit-actor">Actor</label>
        <input id="audit-actor" value={filters.actor} placeholder="username" onChange={set('actor')} />
        <label htmlFor="audit-outcome">Outcome</label>
        <select id="audit-outcome" value={filters.outcome} onChange={set('outcome')}>
          <option value="">any</option>
          <option>success</option>
          <option>failure</option>
          <option>denied</option>
        </select>
        <label htmlFor="audit-from">From</label>
        <input id="audit-from" type="datetime-local" value={filters.from} onChange={set('from')} />
        <label htmlFor="audit-to">To</label>
        <input id="audit-to" type="datetime-local" value={filters.to} onChange={set('to')} />
      </form>
      <ErrorNote error={error} />
      <table aria-label="Audit events">
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Outcome</th>
            <th scope="col">Target</th>
            <th scope="col">Reason</th>
            <th scope="col">From</th>
          </tr>
        </thead>
        <tbody>
          {page?.items.map((e) => (
            <tr key={e.id}>
              <td>{when(e.at)}</td>
              <td>{e.actorName ? <span title={e.actorUserId ?? undefined}>{e.actorName}</span> : e.actorUserId ?? '—'}</td>
              <th scope="row">{e.action}</th>
              <td>
                <span className={`badge outcome-${e.outcome}`}>{e.outcome}</span>
              </td>
              <td>{e.targetType ? <Target type={e.targetType} id={e.targetId} name={e.targetName ?? null} subject={e.subjectName ?? null} /> : '—'}</td>
              <td>{e.reason ?? ''}</td>
              <td>{e.sourceAddress ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {page && <Pager label="Audit log" total={page.total} limit={LIMIT} offset={offset} onOffset={setOffset} />}
    </section>
  );
}

/** "group Artists" with the id beside it in small print: the name to read, the id to search for (targetId filter). */
function Target(props: { type: string; id: string | null; name: string | null; subject: string | null }): ReactNode {
  return (
    <>
      {props.type} {props.name && <strong>{props.name}</strong>}
      {props.subject && (
        <>
          {' '}
          · user <strong>{props.subject}</strong>
        </>
      )}{' '}
      {props.id && props.id !== props.name && <code className="muted id">{props.id}</code>}
    </>
  );
}
