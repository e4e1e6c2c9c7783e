import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { get, messageOf, post, query } from '../api/client.ts';
import { useCan } from '../api/session.ts';
import type { Page, Workstation } from '../api/types.ts';
import { ConfirmButton, ErrorNote, Pager } from '../ui/confirm.tsx';

const LIMIT = 25;
const POWER_STATES = ['pending', 'running', 'stopping', 'stopped', 'terminated', 'unknown'];
type SortKey = 'name' | 'powerState' | 'createdAt';

/** Every workstation: filter, sort, page; power actions (with a confirmation) for roles that may. */
export function WorkstationsPage(): ReactNode {
  const [q, setQ] = useState('');
  const [powerState, setPowerState] = useState('');
  const [poolId, setPoolId] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'name', desc: false });
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page<Workstation> | null>(null);
  const [pools, setPools] = useState<{ id: string; name: string }[]>([]);
  const [error, setError] = useState<string | null>(null);
  const canWrite = useCan('workstations:write');

  // Typing fires a request per key; only the latest answer may land (an older one can arrive last).
  const latest = useRef(0);
  const load = useCallback(() => {
    const mine = ++latest.current;
    const params = { q, powerState, poolId, sort: `${sort.desc ? '-' : ''}${sort.key}`, limit: LIMIT, offset };
    get<Page<Workstation>>(`/api/v1/workstations${query(params)}`).then(
      (p) => {
        if (mine !== latest.current) return;
        setPage(p);
        setError(null);
      },
      (e) => mine === latest.current && setError(messageOf(e)),
    );
  }, [q, powerState, poolId, sort, offset]);
  useEffect(load, [load]);
  useEffect(() => {
    get<Page<{ id: string; name: string }>>('/api/v1/pools?limit=500').then((p) => setPools(p.items), () => setPools([]));
  }, []);
  const poolName = (id: string | null) => pools.find((p) => p.id === id)?.name ?? '—';

  const header = (key: SortKey, label: string) => (
    <th scope="col" aria-sort={sort.key === key ? (sort.desc ? 'descending' : 'ascending') : 'none'}>
      <button type="button" className="link" onClick={() => setSort((s) => ({ key, desc: s.key === key ? !s.desc : false }))}>
        {label}
      </button>
    </th>
  );
  const power = (w: Workstation, action: 'start' | 'stop' | 'reboot' | 'terminate') => () => post(`/api/v1/workstations/${w.id}/${action}`, action === 'stop' ? {} : undefined);

  return (
    <section aria-labelledby="ws-title">
      <h1 id="ws-title">Workstations</h1>
      <form className="filters" role="search" aria-label="Filter workstations" onSubmit={(e) => e.preventDefault()}>
        <label htmlFor="ws-q">Search</label>
        <input id="ws-q" type="search" value={q} placeholder="name, instance id or address" onChange={(e) => (setQ(e.target.value), setOffset(0))} />
        <label htmlFor="ws-power">Power state</label>
        <select id="ws-power" value={powerState} onChange={(e) => (setPowerState(e.target.value), setOffset(0))}>
          <option value="">any</option>
          {POWER_STATES.map((s) => (
            <option key={s}>{s}</option>
          ))}
        </select>
        <label htmlFor="ws-pool">Pool</label>
        <select id="ws-pool" value={poolId} onChange={(e) => (setPoolId(e.target.value), setOffset(0))}>
          <option value="">any</option>
          {pools.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
      </form>
      <ErrorNote error={error} />
      <table aria-label="Workstations">
        <thead>
          <tr>
            {header('name', 'Name')}
            {header('powerState', 'Power')}
            <th scope="col">Pool</th>
            <th scope="col">Address</th>
            <th scope="col">Type</th>
            <th scope="col">Health</th>
            {header('createdAt', 'Added')}
            {canWrite && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {page?.items.map((w) => (
            <tr key={w.id}>
              <th scope="row">{w.name}</th>
              <td>
                <span className={`badge power-${w.powerState}`}>{w.powerState}</span>
              </td>
              <td>{poolName(w.poolId)}</td>
              <td>{w.privateAddress ?? '—'}</td>
              <td>{w.instanceType ?? '—'}</td>
              <td>{w.health}</td>
              <td>{new Date(w.createdAt).toLocaleDateString()}</td>
              {canWrite && (
                <td className="actions">
                  {w.powerState === 'stopped' && <ConfirmButton label={`Start ${w.name}`} question={`Start ${w.name}?`} confirmLabel="Start" onConfirm={power(w, 'start')} onDone={load} />}
                  {w.powerState === 'running' && <ConfirmButton label={`Stop ${w.name}`} question={`Stop ${w.name}? Its user is disconnected.`} confirmLabel="Stop" onConfirm={power(w, 'stop')} onDone={load} />}
                  {w.powerState === 'running' && <ConfirmButton label={`Reboot ${w.name}`} question={`Reboot ${w.name}?`} confirmLabel="Reboot" onConfirm={power(w, 'reboot')} onDone={load} />}
                  {w.powerState !== 'terminated' && (
                    <ConfirmButton label={`Terminate ${w.name}`} question={`Terminate ${w.name}? The machine and its disk are destroyed.`} confirmLabel="Terminate" danger onConfirm={power(w, 'terminate')} onDone={load} />
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {page?.items.length === 0 && <p className="muted">No workstation matches.</p>}
      {page && <Pager label="Workstations" total={page.total} limit={LIMIT} offset={offset} onOffset={setOffset} />}
    </section>
  );
}
