import { useEffect, useState, type ReactNode } from 'react';
import { get, messageOf } from '../api/client.ts';
import type { Page, Pool, PoolForecast } from '../api/types.ts';
import { ErrorNote } from '../ui/confirm.tsx';
import { ForecastChart } from '../ui/forecast-chart.tsx';

/**
 * Per pool: today's forecast against what happened, and why the standby is what it is now
 * (issue 19). Read-only; the standby setting itself is edited with the pool.
 */
export function PoolForecastPage(): ReactNode {
  const [pools, setPools] = useState<Pool[] | null>(null);
  const [poolId, setPoolId] = useState<string>('');
  const [forecast, setForecast] = useState<PoolForecast | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    get<Page<Pool>>('/api/v1/pools?limit=500').then((p) => {
      setPools(p.items);
      setPoolId((current) => current || (p.items.find((x) => x.standby.mode === 'predictive') ?? p.items[0])?.id || '');
    }, (e) => setError(messageOf(e)));
  }, []);
  useEffect(() => {
    if (!poolId) return;
    setForecast(null);
    get<PoolForecast>(`/api/v1/pools/${poolId}/forecast`).then(setForecast, (e) => setError(messageOf(e)));
  }, [poolId]);

  const pool = pools?.find((p) => p.id === poolId);
  const nowIndex = forecast ? forecast.today.findIndex((s) => s.actual === null) : -1;
  return (
    <section aria-labelledby="forecast-title">
      <h1 id="forecast-title">Pool forecast</h1>
      <ErrorNote error={error} />
      {pools && pools.length === 0 && <p className="muted">No pools yet.</p>}
      {pools && pools.length > 0 && (
        <div className="filters">
          <label htmlFor="forecast-pool">Pool</label>
          <select id="forecast-pool" value={poolId} onChange={(e) => setPoolId(e.target.value)}>
            {pools.map((p) => (
              <option key={p.id} value={p.id}>
                {p.name}
              </option>
            ))}
          </select>
        </div>
      )}
      {pool && forecast && (
        <>
          <h2>Today in {forecast.timeZone}</h2>
          <ForecastChart label={`Arrivals today in pool ${pool.name}: forecast against what happened`} slots={forecast.today} nowIndex={nowIndex < 0 ? null : nowIndex} />
          <h2>Standby now</h2>
          {forecast.target ? (
            <>
              <p className="stat">
                <strong>{forecast.target.warm}</strong> running or booting, <strong>{forecast.target.available}</strong> available in all (predictive, quantile {forecast.standby.quantile}, boot {forecast.standby.bootSeconds} s{forecast.standby.leadMinutes > 0 ? `, machines started for the next ${forecast.standby.leadMinutes} min` : ', machines started one boot ahead'}
                {forecast.standby.reserveMinutes > 0 ? `, stopped reserve ${forecast.standby.reserveMinutes} min` : ''}
                {forecast.standby.holdMinutes > 0 ? `, running standby held for the next ${forecast.standby.holdMinutes} min` : ', surplus stopped at once'})
              </p>
              <p className="reason" aria-label="Why">
                {forecast.target.reason}
              </p>
            </>
          ) : (
            <p className="reason" aria-label="Why">
              Sized by its thresholds{pool.thresholdsNow.window !== null ? ` (schedule window ${pool.thresholdsNow.window} is open)` : ''}: {pool.thresholdsNow.minAvailable} available. Set the pool&apos;s standby to predictive to size it from this forecast.
            </p>
          )}
          {pool.lastReconcileSummary?.standby && <p className="muted">Last reconciler pass aimed at {pool.lastReconcileSummary.standby.warm} warm.</p>}
        </>
      )}
    </section>
  );
}
