import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import { del, get, messageOf, patch, post, query } from '../api/client.ts';
import { useCan } from '../api/session.ts';
import type { Page } from '../api/types.ts';
import { ErrorNote, Pager, when } from '../ui/confirm.tsx';
import { ConfirmDialog } from '../ui/confirm-dialog.tsx';
import { RowMenu } from '../ui/row-menu.tsx';
import { StaticHostForm } from './static-hosts.tsx';
import { ACTIONS, workstationActions, type ListedWorkstation, type WorkstationAction } from './workstation-actions.ts';

const LIMIT = 25;
const POWER_STATES = ['pending', 'running', 'stopping', 'stopped', 'terminated', 'unknown'];
type SortKey = 'name' | 'powerState' | 'createdAt';

/**
 * Every workstation: filter, sort, page; who it belongs to (provider, assigned user) and its health;
 * the operations its provider can do sit in a per-row menu, each behind a confirmation naming the
 * machine (Edit opens the static-host form instead). `poolId` starts the page filtered to one pool (the policies page links here).
 */
export function WorkstationsPage(props: { poolId?: string } = {}): ReactNode {
  const [q, setQ] = useState('');
  const [powerState, setPowerState] = useState('');
  const [poolId, setPoolId] = useState(props.poolId ?? '');
  const [asking, setAsking] = useState<{ w: ListedWorkstation; action: WorkstationAction } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'name', desc: false });
  const [offset, setOffset] = useState(0);
  const [page, setPage] = useState<Page<ListedWorkstation> | null>(null);
  const [pools, setPools] = useState<{ id: string; name: string }[]>([]);
  const [error, setError] = useState<string | null>(null);
  const canWrite = useCan('workstations:write');
  // The static-host form: null closed, 'new' to add, a machine to edit.
  const [editing, setEditing] = useState<ListedWorkstation | 'new' | null>(null);

  // Typing fires a request per key; only the latest answer may land (an older one can arrive last).
  const latest = useRef(0);
  const load = useCallback(() => {
    const mine = ++latest.current;
    const params = { q, powerState, poolId, sort: `${sort.desc ? '-' : ''}${sort.key}`, limit: LIMIT, offset };
    get<Page<ListedWorkstation>>(`/api/v1/workstations${query(params)}`).then(
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
  const run = (w: ListedWorkstation, action: WorkstationAction) => {
    if (action === 'delete') return del(`/api/v1/workstations/${w.id}`);
    if (action === 'maintenance') return patch(`/api/v1/workstations/${w.id}`, { maintenance: !w.maintenance });
    return post(`/api/v1/workstations/${w.id}/${action}`, action === 'stop' ? {} : undefined);
  };
  const choose = (w: ListedWorkstation, action: WorkstationAction) => {
    setNotice(null);
    if (action === 'edit') setEditing(w);
    else setAsking({ w, action });
  };
  const closeForm = () => (setEditing(null), load());

  return (
    <section aria-labelledby="ws-title">
      <h1 id="ws-title">Workstations</h1>
      {canWrite && editing === null && (
        <button type="button" onClick={() => setEditing('new')}>
          Add static host
        </button>
      )}
      {editing !== null && <StaticHostForm key={editing === 'new' ? 'new' : editing.id} host={editing === 'new' ? null : editing} onDone={closeForm} onCancel={() => setEditing(null)} />}
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
      {notice && (
        <p className="notice" role="status">
          {notice}
        </p>
      )}
      {asking && (
        <ConfirmDialog
          title={ACTIONS[asking.action].question?.(asking.w) ?? ''}
          confirmLabel={`${ACTIONS[asking.action].label(asking.w)} ${asking.w.name}`}
          typeToConfirm={ACTIONS[asking.action].destructive ? asking.w.name : undefined}
          onConfirm={() => run(asking.w, asking.action)}
          onClose={(done) => {
            if (done) setNotice(`${ACTIONS[asking.action].label(asking.w)}: ${asking.w.name} — done.`);
            setAsking(null);
            if (done) load();
          }}
        />
      )}
      <table aria-label="Workstations">
        <thead>
          <tr>
            {header('name', 'Name')}
            {header('powerState', 'Power')}
            <th scope="col">Provider</th>
            <th scope="col">Pool</th>
            <th scope="col">Assigned to</th>
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
                {w.maintenance && <span className="badge maintenance">maintenance</span>}
              </td>
              <td title={w.provider?.kind}>{w.provider?.name ?? '—'}</td>
              <td>{poolName(w.poolId)}</td>
              <td title={w.assignedUser?.displayName ?? undefined}>{w.assignedUser?.username ?? '—'}</td>
              <td>{w.dnsName ?? w.privateAddress ?? '—'}</td>
              <td>{w.instanceType ?? '—'}</td>
              <td>
                <span className={`badge health-${w.health}`} title={healthSource(w)}>
                  {w.health}
                </span>
              </td>
              <td>{new Date(w.createdAt).toLocaleDateString()}</td>
              {canWrite && (
                <td>
                  <RowMenu
                    label={`Actions for ${w.name}`}
                    items={workstationActions(w).map((action) => ({ label: ACTIONS[action].label(w), destructive: ACTIONS[action].destructive, onSelect: () => choose(w, action) }))}
                  />
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

/** Where the health came from and when, as the cell's tooltip (another part of the API fills these). */
function healthSource(w: ListedWorkstation & { healthSource?: string | null; healthCheckedAt?: string | null }): string {
  if (!w.healthSource) return 'not checked yet';
  return `from ${w.healthSource}${w.healthCheckedAt ? `, checked ${when(w.healthCheckedAt)}` : ''}`;
}
