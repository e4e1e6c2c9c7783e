import { useEffect, useState, type ReactNode } from 'react';
import { get } from '../api/client.ts';
import type { LiveState } from '../api/events.ts';
import type { CostReport } from '../api/types.ts';
import { when } from '../ui/confirm.tsx';

/** Pools, gateways and live sessions as the event stream reports them; cost once the report exists. */
export function DashboardPage(props: { live: LiveState }): ReactNode {
  const d = props.live.dashboard;
  return (
    <section aria-labelledby="dash-title">
      <h1 id="dash-title">Dashboard</h1>
      <p className="muted" aria-live="polite">
        {props.live.live ? 'Live: updates arrive as they happen.' : 'Connecting to live updates…'}
      </p>
      {d?.liveSessions !== null && d?.liveSessions !== undefined && (
        <p className="stat">
          <a href="#/sessions">
            <strong>{d.liveSessions}</strong> live {d.liveSessions === 1 ? 'session' : 'sessions'}
          </a>
        </p>
      )}
      <CostThisMonth />
      <h2>Pools</h2>
      {d?.pools && (
        <table aria-label="Pools">
          <thead>
            <tr>
              <th scope="col">Pool</th>
              <th scope="col">Available</th>
              <th scope="col">Assigned</th>
              <th scope="col">Starting</th>
              <th scope="col">Failed</th>
              <th scope="col">Last reconcile</th>
            </tr>
          </thead>
          <tbody>
            {d.pools.map((p) => (
              <tr key={p.id}>
                <th scope="row">{p.name}</th>
                <td>{p.availability.available}</td>
                <td>{p.availability.assigned}</td>
                <td>{p.availability.starting}</td>
                <td>{p.availability.failed}</td>
                <td>
                  <span className={`badge outcome-${p.lastReconcileOutcome ?? 'none'}`}>{p.lastReconcileOutcome ?? 'not yet'}</span> {when(p.lastReconcileAt)}
                  {p.lastReconcileError && <div className="form-error">{p.lastReconcileError}</div>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {d?.pools?.length === 0 && <p className="muted">No pools yet.</p>}
      {d?.gateways && (
        <>
          <h2>Gateways</h2>
          <table aria-label="Gateways">
            <thead>
              <tr>
                <th scope="col">Gateway</th>
                <th scope="col">Cluster</th>
                <th scope="col">Status</th>
                <th scope="col">Health</th>
                <th scope="col">Live grants</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {d.gateways.map((g) => (
                <tr key={g.id}>
                  <th scope="row">{g.name}</th>
                  <td>{g.cluster}</td>
                  <td>{g.status}</td>
                  <td>
                    <span className={`badge health-${g.health}`}>{g.health}</span>
                  </td>
                  <td>{g.liveGrants}</td>
                  <td>{when(g.lastSeenAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {d.gateways.length === 0 && <p className="muted">No gateways enrolled.</p>}
        </>
      )}
    </section>
  );
}

/** Shown only when the broker has the cost report (GET /api/v1/reports/cost) and the role may read it. */
function CostThisMonth(): ReactNode {
  const [report, setReport] = useState<CostReport | null>(null);
  useEffect(() => {
    const now = new Date();
    const from = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1)).toISOString();
    get<CostReport>(`/api/v1/reports/cost?from=${encodeURIComponent(from)}&to=${encodeURIComponent(now.toISOString())}&groupBy=pool`).then(setReport, () => setReport(null));
  }, []);
  if (!report?.total) return null;
  const t = report.total;
  return (
    <div className="cost" aria-label="Cost this month">
      <h2>Cost this month</h2>
      <p className="stat">
        {t.cost.length ? t.cost.map((c) => `${c.amount.toFixed(2)} ${c.currency}`).join(' + ') : '—'} · {t.runningHours.toFixed(1)} running hours · {t.savedHours.toFixed(1)} hours saved by stopping
      </p>
    </div>
  );
}
